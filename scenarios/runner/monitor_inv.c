/* monitor_inv.c — the monitor's pure decisions: object table, create-to-
 * Ready pairs, fault windows and recovery clocks, counters across process
 * restarts, Warning Event counts and the reconcile invariants.
 *
 * One idea: every rule reads snapshots the caller fetched and appends
 * plain one-line messages; the same functions serve the continuous check,
 * the final check and the unit tests. */
#include "monitor_inv.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csl/buf.h"
#include "csl/units.h"

/* ---------------------------------------------------------------- helpers */

static const cJSON *jget(const cJSON *o, const char *k)
{
    return cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL;
}

static const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *v = jget(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool jnum(const cJSON *o, const char *k, double *out)
{
    const cJSON *v = jget(o, k);
    if (!cJSON_IsNumber(v)) return false;
    *out = v->valuedouble;
    return true;
}

static const char *tag(const cJSON *inst, const char *key)
{
    return jstr(jget(inst, "tags"), key);
}

static const char *meta_str(const cJSON *o, const char *k)
{
    return jstr(jget(o, "metadata"), k);
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* Grows *v (of elem-byte elements) so that one more fits. */
static bool grow(void **v, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap) return true;
    size_t nc = *cap ? *cap * 2 : 8;
    void *p = realloc(*v, nc * elem);
    if (!p) return false;
    *v = p;
    *cap = nc;
    return true;
}

/* "web-3 (uid U)" for messages: the name when known. */
static void who(char *out, size_t n, const char *name, const char *uid)
{
    if (name)
        snprintf(out, n, "object %s (uid %s)", name, uid);
    else
        snprintf(out, n, "object with uid %s", uid);
}

/* ---------------------------------------------------------------- violations */

int srm_viols_add(srm_viols *v, const char *key, const char *fmt, ...)
{
    if (!grow((void **)&v->items, &v->cap, v->n, sizeof *v->items)) return -1;
    char **nk = realloc(v->keys, v->cap * sizeof *nk);
    if (!nk) return -1;
    v->keys = nk;
    va_list ap;
    va_start(ap, fmt);
    char *msg = NULL;
    int r = vasprintf(&msg, fmt, ap);
    va_end(ap);
    if (r < 0) return -1;
    char *k = NULL;
    if (key && !(k = strdup(key))) {
        free(msg);
        return -1;
    }
    v->items[v->n] = msg;
    v->keys[v->n] = k;
    v->n++;
    return 0;
}

bool srm_viols_has_key(const srm_viols *v, const char *key)
{
    for (size_t i = 0; key && i < v->n; i++)
        if (v->keys[i] && strcmp(v->keys[i], key) == 0) return true;
    return false;
}

char *srm_viols_summary(const srm_viols *v, size_t max)
{
    csl_buf b;
    csl_buf_init(&b);
    bool ok = csl_buf_puts(&b, "");
    for (size_t i = 0; ok && i < v->n && i < max; i++)
        ok = csl_buf_printf(&b, "%s%s", i ? "; " : "", v->items[i]);
    if (ok && v->n > max) ok = csl_buf_printf(&b, " (and %zu more)", v->n - max);
    if (!ok) {
        csl_buf_free(&b);
        return NULL;
    }
    return csl_buf_steal(&b);
}

void srm_viols_free(srm_viols *v)
{
    for (size_t i = 0; i < v->n; i++) {
        free(v->items[i]);
        free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    memset(v, 0, sizeof *v);
}

/* ---------------------------------------------------------------- objects */

bool srm_instance_live(const char *state)
{
    static const char *const live[] = {"pending", "running",  "resizing",  "stopping",
                                       "stopped", "starting", "rebooting", NULL};
    for (size_t i = 0; state && live[i]; i++)
        if (strcmp(state, live[i]) == 0) return true;
    return false;
}

bool srm_cs_ready(const cJSON *cs)
{
    const cJSON *conds = jget(jget(cs, "status"), "conditions");
    const cJSON *c;
    cJSON_ArrayForEach(c, conds)
    {
        const char *type = jstr(c, "type"), *st = jstr(c, "status");
        if (type && st && strcmp(type, "Ready") == 0) return strcmp(st, "True") == 0;
    }
    return false;
}

srm_object *srm_objects_find(const srm_objects *t, const char *uid)
{
    for (size_t i = 0; uid && i < t->n; i++)
        if (strcmp(t->v[i].uid, uid) == 0) return &t->v[i];
    return NULL;
}

srm_object *srm_objects_observe(srm_objects *t, const cJSON *cs)
{
    const char *uid = meta_str(cs, "uid");
    if (!uid) return NULL;
    srm_object *o = srm_objects_find(t, uid);
    if (!o) {
        if (!grow((void **)&t->v, &t->cap, t->n, sizeof *t->v)) return NULL;
        o = &t->v[t->n];
        memset(o, 0, sizeof *o);
        if (!(o->uid = strdup(uid))) return NULL;
        t->n++;
    }
    const char *name = meta_str(cs, "name");
    if (name && (!o->name || strcmp(o->name, name) != 0)) {
        free(o->name);
        o->name = strdup(name);
    }
    const cJSON *md = jget(cs, "metadata"), *st = jget(cs, "status");
    const char *iid = jstr(st, "instanceID");
    if (!iid || !*iid) iid = NULL;
    if (!(iid && o->instance_id && strcmp(iid, o->instance_id) == 0)) {
        free(o->instance_id);
        o->instance_id = dup_or_null(iid);
    }
    double d;
    o->generation = jnum(md, "generation", &d) ? (int64_t)d : 0;
    o->observed_gen = jnum(st, "observedGeneration", &d) ? (int64_t)d : -1;
    if (jnum(st, "failoverCount", &d) && (int)d > o->failover_max) o->failover_max = (int)d;
    o->ready = srm_cs_ready(cs);
    o->deleting = jget(md, "deletionTimestamp") && !cJSON_IsNull(jget(md, "deletionTimestamp"));
    const char *pol = jstr(jget(cs, "spec"), "deletionPolicy");
    o->retain = pol && strcmp(pol, "Retain") == 0;
    o->gone = false;
    return o;
}

void srm_objects_gone(srm_objects *t, const char *uid)
{
    srm_object *o = srm_objects_find(t, uid);
    if (o) o->gone = true;
}

void srm_objects_counts(const srm_objects *t, int *objects, int *ready)
{
    int n = 0, r = 0;
    for (size_t i = 0; i < t->n; i++) {
        if (t->v[i].gone) continue;
        n++;
        if (t->v[i].ready) r++;
    }
    if (objects) *objects = n;
    if (ready) *ready = r;
}

void srm_objects_free(srm_objects *t)
{
    for (size_t i = 0; i < t->n; i++) {
        free(t->v[i].uid);
        free(t->v[i].name);
        free(t->v[i].instance_id);
    }
    free(t->v);
    memset(t, 0, sizeof *t);
}

/* ---------------------------------------------------------------- cloud snapshot */

static int cloud_by_id(const void *x, const void *y)
{
    return strcmp(((const srm_cloud_inst *)x)->id, ((const srm_cloud_inst *)y)->id);
}

int srm_cloud_set(srm_cloud *c, const cJSON *instances)
{
    srm_cloud_free(c);
    size_t n = (size_t)cJSON_GetArraySize(instances);
    if (n == 0) return 0;
    c->v = calloc(n, sizeof *c->v);
    if (!c->v) goto oom;
    const cJSON *i;
    cJSON_ArrayForEach(i, instances)
    {
        const char *id = jstr(i, "id"), *st = jstr(i, "state");
        if (!id || !st) continue;
        srm_cloud_inst *e = &c->v[c->n++];
        e->id = strdup(id);
        e->state = strdup(st);
        if (!e->id || !e->state) goto oom;
    }
    qsort(c->v, c->n, sizeof *c->v, cloud_by_id);
    return 0;
oom:
    srm_cloud_free(c);
    return -1;
}

const char *srm_cloud_state(const srm_cloud *c, const char *id)
{
    srm_cloud_inst key = {(char *)id, NULL};
    const srm_cloud_inst *hit =
        id && c->n ? bsearch(&key, c->v, c->n, sizeof *c->v, cloud_by_id) : NULL;
    return hit ? hit->state : NULL;
}

void srm_cloud_free(srm_cloud *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->v[i].id);
        free(c->v[i].state);
    }
    free(c->v);
    memset(c, 0, sizeof *c);
}

bool srm_recovered(const srm_objects *t, const srm_cloud *cloud)
{
    for (size_t i = 0; i < t->n; i++) {
        const srm_object *o = &t->v[i];
        if (o->gone || o->deleting) continue;
        if (!o->ready || o->observed_gen != o->generation) return false;
        if (cloud) {
            const char *st = srm_cloud_state(cloud, o->instance_id);
            if (!st || strcmp(st, "running") != 0) return false;
        }
    }
    return true;
}

/* ---------------------------------------------------------------- create-to-Ready */

static srm_ctr_entry *ctr_entry(srm_ctr *c, const char *uid)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->v[i].uid, uid) == 0) return &c->v[i];
    if (!grow((void **)&c->v, &c->cap, c->n, sizeof *c->v)) return NULL;
    srm_ctr_entry *e = &c->v[c->n];
    memset(e, 0, sizeof *e);
    if (!(e->uid = strdup(uid))) return NULL;
    c->n++;
    return e;
}

static int64_t ctr_complete(srm_ctr_entry *e)
{
    if (e->done || !e->created_ns || !e->ready_ns) return -1;
    e->done = true;
    return e->ready_ns > e->created_ns ? e->ready_ns - e->created_ns : 0;
}

int64_t srm_ctr_created(srm_ctr *c, const char *uid, int64_t t_ns)
{
    srm_ctr_entry *e = uid && t_ns > 0 ? ctr_entry(c, uid) : NULL;
    if (!e || e->created_ns) return -1;
    e->created_ns = t_ns;
    c->created++;
    return ctr_complete(e);
}

int64_t srm_ctr_ready(srm_ctr *c, const char *uid, int64_t t_ns)
{
    srm_ctr_entry *e = uid && t_ns > 0 ? ctr_entry(c, uid) : NULL;
    if (!e || e->ready_ns) return -1;
    e->ready_ns = t_ns;
    return ctr_complete(e);
}

void srm_ctr_free(srm_ctr *c)
{
    for (size_t i = 0; i < c->n; i++) free(c->v[i].uid);
    free(c->v);
    memset(c, 0, sizeof *c);
}

/* ---------------------------------------------------------------- fault windows */

int srm_fault_open(srm_faults *f, const char *kind, const char *what, long index)
{
    if (!grow((void **)&f->w, &f->cap, f->n, sizeof *f->w)) return -1;
    srm_window *w = &f->w[f->n];
    w->kind = strdup(kind ? kind : "");
    w->what = strdup(what ? what : "");
    if (!w->kind || !w->what) {
        free(w->kind);
        free(w->what);
        return -1;
    }
    w->index = index;
    w->open = true;
    f->n++;
    return 0;
}

long srm_fault_clear(srm_faults *f, const char *kind, const char *what, int64_t t_ns, bool clock)
{
    long idx = -1;
    for (size_t i = f->n; i-- > 0;) {
        srm_window *w = &f->w[i];
        if (w->open && strcmp(w->kind, kind ? kind : "") == 0 &&
            strcmp(w->what, what ? what : "") == 0) {
            w->open = false;
            idx = w->index;
            break;
        }
    }
    if (!clock) return idx;
    if (f->n_clears == f->cap_clears) {
        size_t nc = f->cap_clears ? f->cap_clears * 2 : 8;
        int64_t *c = realloc(f->clears, nc * sizeof *c);
        if (!c) return -2;
        f->clears = c;
        char **cw = realloc(f->clear_what, nc * sizeof *cw);
        if (!cw) return -2;
        f->clear_what = cw;
        f->cap_clears = nc;
    }
    char *label = NULL;
    if (asprintf(&label, "%s %s", kind ? kind : "", what ? what : "") < 0) return -2;
    f->clears[f->n_clears] = t_ns;
    f->clear_what[f->n_clears] = label;
    f->n_clears++;
    return idx;
}

size_t srm_recovery_end(srm_faults *f, int64_t seen_ns, int64_t now_ns, int64_t *out, size_t max)
{
    size_t ended = 0, keep = 0;
    for (size_t i = 0; i < f->n_clears; i++) {
        if (f->clears[i] <= seen_ns) {
            if (ended < max) out[ended] = now_ns > f->clears[i] ? now_ns - f->clears[i] : 0;
            ended++;
            free(f->clear_what[i]);
        } else {
            f->clears[keep] = f->clears[i];
            f->clear_what[keep] = f->clear_what[i];
            keep++;
        }
    }
    f->n_clears = keep;
    return ended;
}

size_t srm_recovery_pending(const srm_faults *f, int64_t *earliest, const char **what)
{
    size_t best = 0;
    for (size_t i = 1; i < f->n_clears; i++)
        if (f->clears[i] < f->clears[best]) best = i;
    if (f->n_clears) {
        if (earliest) *earliest = f->clears[best];
        if (what) *what = f->clear_what[best];
    }
    return f->n_clears;
}

size_t srm_faults_open_indexes(const srm_faults *f, long *out, size_t max)
{
    size_t k = 0;
    for (size_t i = 0; i < f->n && k < max; i++)
        if (f->w[i].open) out[k++] = f->w[i].index;
    return k;
}

void srm_faults_free(srm_faults *f)
{
    for (size_t i = 0; i < f->n; i++) {
        free(f->w[i].kind);
        free(f->w[i].what);
    }
    for (size_t i = 0; i < f->n_clears; i++) free(f->clear_what[i]);
    free(f->w);
    free(f->clears);
    free(f->clear_what);
    memset(f, 0, sizeof *f);
}

/* ---------------------------------------------------------------- counters */

double srm_counter_feed(srm_counter *c, double value, double start_time)
{
    double d;
    if (!c->have)
        d = 0;
    else if (start_time != c->start_time || value < c->last)
        d = value; /* a new process: everything it counted is new */
    else
        d = value - c->last;
    c->have = true;
    c->last = value;
    c->start_time = start_time;
    return d;
}

/* ---------------------------------------------------------------- Events */

size_t srm_warning_reasons(const cJSON *items, srm_count_fn fn, void *ctx)
{
    size_t n = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, items)
    {
        const char *type = jstr(e, "type");
        if (!type || strcmp(type, "Warning") != 0) continue;
        const char *reason = jstr(e, "reason");
        double c = 1, d;
        if (jnum(jget(e, "series"), "count", &d) && d >= 1)
            c = d;
        else if (jnum(e, "deprecatedCount", &d) && d > 1)
            c = d;
        fn(ctx, reason && *reason ? reason : "(none)", (long)c);
        n++;
    }
    return n;
}

/* ---------------------------------------------------------------- instances seen */

const char *srm_seen_uid(const srm_seen *s, const char *id)
{
    for (size_t i = 0; id && i < s->n; i++)
        if (strcmp(s->ids[i], id) == 0) return s->uids[i];
    return NULL;
}

int srm_seen_add(srm_seen *s, const cJSON *instances)
{
    const cJSON *i;
    cJSON_ArrayForEach(i, instances)
    {
        const char *id = jstr(i, "id"), *uid = tag(i, SRM_TAG_UID);
        if (!id || !uid || srm_seen_uid(s, id)) continue;
        if (!grow((void **)&s->ids, &s->cap, s->n, sizeof *s->ids)) return -1;
        char **nu = realloc(s->uids, s->cap * sizeof *nu);
        if (!nu) return -1;
        s->uids = nu;
        char *a = strdup(id), *b = strdup(uid);
        if (!a || !b) {
            free(a);
            free(b);
            return -1;
        }
        s->ids[s->n] = a;
        s->uids[s->n] = b;
        s->n++;
    }
    return 0;
}

void srm_seen_free(srm_seen *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->ids[i]);
        free(s->uids[i]);
    }
    free(s->ids);
    free(s->uids);
    memset(s, 0, sizeof *s);
}

/* ---------------------------------------------------------------- invariants */

/* The object name an instance's name tag gives when it is "<ns>/<name>". */
static const char *name_in_ns(const cJSON *inst, const char *ns)
{
    const char *nt = tag(inst, SRM_TAG_NAME);
    size_t l = ns ? strlen(ns) : 0;
    if (!nt || !ns || strncmp(nt, ns, l) != 0 || nt[l] != '/') return NULL;
    return nt + l + 1;
}

typedef struct live_inst {
    const char *uid;
    const cJSON *inst;
    int pos; /* in the cloud's list */
} live_inst;

static int live_by_uid(const void *x, const void *y)
{
    const live_inst *a = x, *b = y;
    int c = strcmp(a->uid, b->uid);
    return c ? c : (a->pos > b->pos) - (a->pos < b->pos);
}

/* Groups by first appearance: a group is named by its first member's pos. */
static int group_by_pos(const void *x, const void *y)
{
    const live_inst *a = *(const live_inst *const *)x, *b = *(const live_inst *const *)y;
    return (a->pos > b->pos) - (a->pos < b->pos);
}

/* The live instances with a uid tag, sorted by uid (then list order), so
 * one object's instances sit together: O(n log n) for 10,000 instances,
 * where pairing them up in the list would be quadratic. */
long srm_check_one_instance(const cJSON *instances, const srm_objects *t, const char *ns,
                            srm_viols *out)
{
    long added = 0;
    int n = cJSON_GetArraySize(instances);
    live_inst *v = calloc(n > 0 ? (size_t)n : 1, sizeof *v);
    const live_inst **firsts = calloc(n > 0 ? (size_t)n : 1, sizeof *firsts);
    if (!v || !firsts) {
        free(v);
        free(firsts);
        return -1;
    }
    size_t nv = 0, ng = 0;
    int pos = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, instances)
    {
        const char *uid = tag(it, SRM_TAG_UID);
        if (uid && srm_instance_live(jstr(it, "state")))
            v[nv++] = (live_inst){.uid = uid, .inst = it, .pos = pos};
        pos++;
    }
    qsort(v, nv, sizeof *v, live_by_uid);
    for (size_t i = 0; i < nv;) {
        size_t j = i + 1;
        while (j < nv && strcmp(v[j].uid, v[i].uid) == 0) j++;
        if (j - i > 1) firsts[ng++] = &v[i];
        i = j;
    }
    /* Report in the order the cloud lists them. */
    qsort(firsts, ng, sizeof *firsts, group_by_pos);
    bool ok = true;
    for (size_t g = 0; ok && g < ng; g++) {
        const live_inst *f = firsts[g];
        const srm_object *o = srm_objects_find(t, f->uid);
        const char *name = o ? o->name : name_in_ns(f->inst, ns);
        if (!o && !name) continue; /* another scenario's, or nobody's */
        csl_buf list, key;
        csl_buf_init(&list);
        csl_buf_init(&key);
        int live = 0;
        ok = csl_buf_puts(&key, f->uid);
        for (const live_inst *x = f; ok && x < v + nv && strcmp(x->uid, f->uid) == 0; x++) {
            const char *id = jstr(x->inst, "id"), *st = jstr(x->inst, "state");
            ok = csl_buf_printf(&list, "%s%s (%s)", live ? ", " : "", id ? id : "?", st) &&
                 csl_buf_printf(&key, " %s", id ? id : "?");
            live++;
        }
        if (ok) {
            char w[320];
            who(w, sizeof w, name, f->uid);
            ok = srm_viols_add(out, csl_buf_str(&key), "%s: %d live instances %s", w, live,
                               csl_buf_str(&list)) == 0;
            added++;
        }
        csl_buf_free(&list);
        csl_buf_free(&key);
    }
    free(v);
    free(firsts);
    return ok ? added : -1;
}

/* The cloud's instances sorted by id, for a binary search per object: the
 * status check is O(n log n), not a scan of every instance per object. */
typedef struct inst_by_id {
    const char *id;
    const cJSON *inst;
} inst_by_id;

static int cmp_inst_id(const void *x, const void *y)
{
    return strcmp(((const inst_by_id *)x)->id, ((const inst_by_id *)y)->id);
}

static inst_by_id *index_instances(const cJSON *instances, size_t *n)
{
    int len = cJSON_GetArraySize(instances);
    inst_by_id *v = malloc((len > 0 ? (size_t)len : 1) * sizeof *v);
    if (!v) return NULL;
    size_t k = 0;
    const cJSON *i;
    cJSON_ArrayForEach(i, instances)
    {
        const char *id = jstr(i, "id");
        if (id) v[k++] = (inst_by_id){id, i};
    }
    qsort(v, k, sizeof *v, cmp_inst_id);
    *n = k;
    return v;
}

static const cJSON *find_instance(const inst_by_id *v, size_t n, const char *id)
{
    inst_by_id key = {id, NULL};
    const inst_by_id *hit = id ? bsearch(&key, v, n, sizeof *v, cmp_inst_id) : NULL;
    return hit ? hit->inst : NULL;
}

/* spec quantity k in units of unit bytes, as the operator maps it; -1 when
 * it cannot be read (then it cannot match anything). */
static int64_t spec_units(const cJSON *spec, const char *k, int64_t unit)
{
    const char *s = jstr(spec, k);
    int64_t bytes;
    char why[CSL_UNITS_ERR_LEN];
    if (!s || csl_quantity_parse_bytes(s, &bytes, why) < 0 || bytes % unit != 0) return -1;
    return bytes / unit;
}

static bool is_deleting(const cJSON *cs)
{
    const cJSON *dt = jget(jget(cs, "metadata"), "deletionTimestamp");
    return dt && !cJSON_IsNull(dt);
}

static bool mismatch_num(csl_buf *b, const cJSON *inst, const char *field, double want,
                         const char *spec_text)
{
    double got;
    if (jnum(inst, field, &got) && got == want) return true;
    if (!jnum(inst, field, &got))
        return csl_buf_printf(b, "%s%s missing (%s)", csl_buf_str(b)[0] ? ", " : "", field,
                              spec_text);
    return csl_buf_printf(b, "%s%s %.0f (%s)", csl_buf_str(b)[0] ? ", " : "", field, got,
                          spec_text);
}

static bool mismatch_str(csl_buf *b, const cJSON *inst, const char *field, const char *want,
                         const char *from)
{
    const char *got = jstr(inst, field);
    if (got && want && strcmp(got, want) == 0) return true;
    return csl_buf_printf(b, "%s%s \"%s\" (%s \"%s\")", csl_buf_str(b)[0] ? ", " : "", field,
                          got ? got : "", from, want ? want : "");
}

long srm_check_status(const cJSON *objects, const cJSON *instances, srm_viols *out)
{
    long added = 0;
    size_t ninst = 0;
    inst_by_id *byid = index_instances(instances, &ninst);
    if (!byid) return -1;
    const cJSON *cs;
    cJSON_ArrayForEach(cs, objects)
    {
        if (!srm_cs_ready(cs) || is_deleting(cs)) continue;
        const cJSON *spec = jget(cs, "spec"), *st = jget(cs, "status");
        const char *iid = jstr(st, "instanceID");
        const cJSON *inst = iid && *iid ? find_instance(byid, ninst, iid) : NULL;
        csl_buf b;
        csl_buf_init(&b);
        bool ok = csl_buf_puts(&b, "");
        if (!iid || !*iid) {
            ok = ok && csl_buf_puts(&b, "status.instanceID is empty");
        } else if (!inst) {
            ok = ok && csl_buf_printf(&b, "instance %s is not in the cloud", iid);
        } else {
            const char *state = jstr(inst, "state");
            if (!state || strcmp(state, "running") != 0)
                ok = ok && csl_buf_printf(&b, "instance %s is %s", iid, state ? state : "?");
            char text[96];
            double cpu = -1;
            jnum(spec, "cpu", &cpu);
            snprintf(text, sizeof text, "spec.cpu %.0f", cpu);
            ok = ok && mismatch_num(&b, inst, "cpu", cpu, text);
            int64_t mem = spec_units(spec, "memory", 1 << 20),
                    disk = spec_units(spec, "disk", 1 << 30);
            const char *ms = jstr(spec, "memory"), *ds = jstr(spec, "disk");
            snprintf(text, sizeof text, "spec.memory %s = %lld MiB", ms ? ms : "?", (long long)mem);
            ok = ok && mismatch_num(&b, inst, "memoryMiB", (double)mem, text);
            snprintf(text, sizeof text, "spec.disk %s = %lld GiB", ds ? ds : "?", (long long)disk);
            ok = ok && mismatch_num(&b, inst, "diskGiB", (double)disk, text);
            ok = ok && mismatch_str(&b, inst, "image", jstr(spec, "image"), "spec.image");
            const char *sz = jstr(st, "zone");
            if (sz && *sz)
                ok = ok && mismatch_str(&b, inst, "zone", sz, "status.zone");
            else
                ok = ok && mismatch_str(&b, inst, "zone", jstr(spec, "zone"), "spec.zone");
        }
        if (ok && csl_buf_str(&b)[0]) {
            char w[320];
            who(w, sizeof w, meta_str(cs, "name"), meta_str(cs, "uid"));
            ok = srm_viols_add(out, NULL, "%s: Ready=True but %s", w, csl_buf_str(&b)) == 0;
            added++;
        }
        csl_buf_free(&b);
        if (!ok) {
            free(byid);
            return -1;
        }
    }
    free(byid);
    return added;
}

long srm_check_observed_generation(const cJSON *objects, srm_viols *out)
{
    long added = 0;
    const cJSON *cs;
    cJSON_ArrayForEach(cs, objects)
    {
        if (!srm_cs_ready(cs) || is_deleting(cs)) continue;
        double gen = 0, obs = -1;
        jnum(jget(cs, "metadata"), "generation", &gen);
        bool has = jnum(jget(cs, "status"), "observedGeneration", &obs);
        if (has && obs == gen) continue;
        char w[320], o[32];
        who(w, sizeof w, meta_str(cs, "name"), meta_str(cs, "uid"));
        if (has)
            snprintf(o, sizeof o, "%.0f", obs);
        else
            snprintf(o, sizeof o, "absent");
        if (srm_viols_add(out, NULL,
                          "%s: Ready=True but status.observedGeneration %s, "
                          "metadata.generation %.0f",
                          w, o, gen) < 0)
            return -1;
        added++;
    }
    return added;
}

long srm_check_finalizers(const cJSON *objects, srm_viols *out)
{
    long added = 0;
    const cJSON *cs;
    cJSON_ArrayForEach(cs, objects)
    {
        if (!is_deleting(cs)) continue;
        const cJSON *fin = jget(jget(cs, "metadata"), "finalizers");
        csl_buf b;
        csl_buf_init(&b);
        bool ok = csl_buf_puts(&b, "");
        const cJSON *f;
        int k = 0;
        cJSON_ArrayForEach(f, fin)
        {
            if (cJSON_IsString(f))
                ok = ok && csl_buf_printf(&b, "%s%s", k++ ? ", " : "", f->valuestring);
        }
        char w[320];
        who(w, sizeof w, meta_str(cs, "name"), meta_str(cs, "uid"));
        const char *dt = meta_str(cs, "deletionTimestamp");
        ok = ok && srm_viols_add(out, NULL,
                                 "%s: still present after cleanup with deletionTimestamp %s, "
                                 "finalizers [%s]",
                                 w, dt ? dt : "?", csl_buf_str(&b)) == 0;
        csl_buf_free(&b);
        if (!ok) return -1;
        added++;
    }
    return added;
}

long srm_check_orphans(const cJSON *instances, const srm_objects *t, srm_viols *out)
{
    long added = 0;
    const cJSON *i;
    cJSON_ArrayForEach(i, instances)
    {
        const char *uid = tag(i, SRM_TAG_UID), *st = jstr(i, "state"), *id = jstr(i, "id");
        const srm_object *o = srm_objects_find(t, uid);
        if (!o || !o->gone || !st || strcmp(st, "deleting") == 0) continue;
        char w[320];
        who(w, sizeof w, o->name, o->uid);
        if (srm_viols_add(out, NULL, "%s, deleted: instance %s (%s) still carries its uid tag%s", w,
                          id ? id : "?", st,
                          o->retain ? " (deletionPolicy Retain: it should have been untagged)"
                                    : "") < 0)
            return -1;
        added++;
    }
    return added;
}

/* True when key is the reconcile contract's for uid: "<uid>" (attempt 0)
 * or "<uid>-attempt-N". */
static bool key_names_uid(const char *key, const char *uid)
{
    static const char att[] = "-attempt-";
    size_t l = strlen(uid);
    if (strncmp(key, uid, l) != 0) return false;
    key += l;
    if (*key == '\0') return true;
    if (strncmp(key, att, sizeof att - 1) != 0) return false;
    key += sizeof att - 1;
    if (!*key) return false;
    for (; *key; key++)
        if (*key < '0' || *key > '9') return false;
    return true;
}

/* Instances tied to one object, for the count rule. */
typedef struct ids_set {
    const char **v;
    size_t n, cap;
} ids_set;

static bool ids_add(ids_set *s, const char *id)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i], id) == 0) return true;
    if (!grow((void **)&s->v, &s->cap, s->n, sizeof *s->v)) return false;
    s->v[s->n++] = id;
    return true;
}

long srm_check_duplicates(const cJSON *creates, const cJSON *keys, const srm_seen *seen,
                          const srm_objects *t, srm_viols *out)
{
    long added = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, creates)
    {
        const char *k = jstr(e, "idempotencyKey");
        if (k && *k) continue;
        double seq = 0, status = 0;
        jnum(e, "seq", &seq);
        jnum(e, "status", &status);
        if (srm_viols_add(out, NULL,
                          "a create without Idempotency-Key: journal seq %.0f %s %s answered %.0f",
                          seq, jstr(e, "method") ? jstr(e, "method") : "POST",
                          jstr(e, "path") ? jstr(e, "path") : "/v1/instances", status) < 0)
            return -1;
        added++;
    }
    for (size_t oi = 0; oi < t->n; oi++) {
        const srm_object *o = &t->v[oi];
        ids_set s = {0};
        char w[320];
        who(w, sizeof w, o->name, o->uid);
        bool ok = true;
        for (size_t i = 0; ok && i < seen->n; i++)
            if (strcmp(seen->uids[i], o->uid) == 0) ok = ids_add(&s, seen->ids[i]);
        cJSON_ArrayForEach(e, keys)
        {
            const char *key = jstr(e, "key"), *req = jstr(e, "request"), *tgt = jstr(e, "target");
            if (!ok || !key || !tgt || !req || strcmp(req, "POST /v1/instances") != 0) continue;
            const char *tagged = srm_seen_uid(seen, tgt);
            bool named = key_names_uid(key, o->uid);
            if (tagged && strcmp(tagged, o->uid) == 0 && !named) {
                ok = srm_viols_add(out, NULL,
                                   "%s: instance %s was created with Idempotency-Key \"%s\", "
                                   "not the contract's \"<uid>\" or \"<uid>-attempt-N\"",
                                   w, tgt, key) == 0;
                added++;
            }
            if (ok && ((tagged && strcmp(tagged, o->uid) == 0) || (!tagged && named)))
                ok = ids_add(&s, tgt);
        }
        size_t allowed = 1 + (size_t)(o->failover_max > 0 ? o->failover_max : 0);
        if (ok && s.n > allowed) {
            csl_buf b;
            csl_buf_init(&b);
            for (size_t i = 0; ok && i < s.n; i++)
                ok = csl_buf_printf(&b, "%s%s", i ? ", " : "", s.v[i]);
            ok = ok && srm_viols_add(out, NULL,
                                     "%s: %zu instances created (%s), at most %zu allowed "
                                     "(1 + failoverCount %d)",
                                     w, s.n, csl_buf_str(&b), allowed, o->failover_max) == 0;
            csl_buf_free(&b);
            added++;
        }
        free(s.v);
        if (!ok) return -1;
    }
    return added;
}
