/* steps_kube.c — the operations on Kubernetes objects: apply, patch,
 * delete, wait, and the kube forms of assert and error.
 *
 * One idea: whatever waits, watches. A wait (or an assert, or a delete
 * waiting for objects to go) starts an informer on the selection's kind and
 * namespace and re-evaluates the selection whenever a change arrives — a
 * condition variable the informer's handlers signal — so no operation
 * sleep-polls the API server, and the moment a condition holds is seen at
 * once. On a timeout the message lists, per object, what was last seen. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "csl/clock.h"
#include "csl/informer.h"
#include "match.h"
#include "steps.h"
#include "template.h"

#define RENDER_MAX 600
#define MAX_LISTED 10 /* objects a message lists one by one */

/* ---------------------------------------------------------------- selection */

typedef struct selection {
    sr_kres kr;
    char kind[64];
    char ns[256];        /* "" for cluster-scoped kinds */
    char **names;        /* explicit names, or NULL */
    size_t n_names;
    char *label_selector; /* "k=v,k2=v2", or NULL */
    cJSON *spec;          /* the expanded spec (owns where/count/match…) */
    const cJSON *where;
    const cJSON *count;   /* an expected number (not with names) */
} selection;

static void selection_free(selection *s)
{
    for (size_t i = 0; i < s->n_names; i++) free(s->names[i]);
    free(s->names);
    free(s->label_selector);
    cJSON_Delete(s->spec);
    memset(s, 0, sizeof *s);
}

/* Builds the selection of op's spec: templates expanded, name × count
 * expanded per index. -1 with the outcome filled. */
static int selection_parse(sr_ctx *c, const sr_op *op, selection *s, sr_outcome *out)
{
    memset(s, 0, sizeof *s);
    const cJSON *raw = op->spec;
    const cJSON *rname = cJSON_GetObjectItemCaseSensitive(raw, "name");
    const cJSON *rcount = cJSON_GetObjectItemCaseSensitive(raw, "count");
    bool per_index = cJSON_IsString(rname) && cJSON_IsNumber(rcount) && op->kind != SR_OP_CRASH;
    static const char *const skip_name[] = {"name", NULL};
    s->spec = sr_steps_expand(c, op, raw, per_index ? skip_name : NULL, out);
    if (!s->spec) return -1;
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(s->spec, "kind");
    snprintf(s->kind, sizeof s->kind, "%s", cJSON_IsString(kind) ? kind->valuestring : "CloudServer");
    if (sr_kind_resource(s->kind, NULL, &s->kr) < 0) {
        sr_outcome_fail(out, c, op, SR_ERROR,
                        "unknown kind %s; expected CloudServer, CloudServerSet, Secret, ConfigMap, "
                        "Lease, Event, Namespace, Pod, Service, ServiceAccount or Deployment",
                        s->kind);
        return -1;
    }
    const cJSON *ns = cJSON_GetObjectItemCaseSensitive(s->spec, "namespace");
    if (s->kr.res.namespaced)
        snprintf(s->ns, sizeof s->ns, "%s", cJSON_IsString(ns) ? ns->valuestring : c->ns ? c->ns : "");
    s->where = cJSON_GetObjectItemCaseSensitive(s->spec, "where");
    const cJSON *names = cJSON_GetObjectItemCaseSensitive(s->spec, "names");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(s->spec, "name");
    const cJSON *sel = cJSON_GetObjectItemCaseSensitive(s->spec, "selector");
    if (per_index) {
        long n = (long)rcount->valuedouble;
        s->names = calloc(n > 0 ? (size_t)n : 1, sizeof *s->names);
        for (long i = 0; s->names && i < n; i++) {
            sr_tvars tv = {.index = i, .ns = c->ns, .scenario = c->sc->name, .run = c->run_id,
                           .seed = c->seed, .vars = c->sc->setup.vars};
            char err[256] = "";
            char *nm = sr_template_expand_str(rname->valuestring, &tv, err, sizeof err);
            if (!nm) {
                sr_outcome_fail(out, c, op, SR_ERROR, "name: %s", err);
                return -1;
            }
            s->names[s->n_names++] = nm;
        }
    } else if (cJSON_IsString(name)) {
        s->names = calloc(1, sizeof *s->names);
        if (s->names && (s->names[0] = strdup(name->valuestring))) s->n_names = 1;
    } else if (cJSON_IsArray(names)) {
        s->names = calloc((size_t)cJSON_GetArraySize(names) + 1, sizeof *s->names);
        const cJSON *it;
        cJSON_ArrayForEach(it, names) if (s->names && cJSON_IsString(it)) s->names[s->n_names++] =
            strdup(it->valuestring);
    } else {
        if (!per_index) s->count = rcount ? cJSON_GetObjectItemCaseSensitive(s->spec, "count") : NULL;
        if (cJSON_IsObject(sel)) {
            csl_buf b = CSL_BUF_INIT;
            const cJSON *it;
            cJSON_ArrayForEach(it, sel)
            {
                char num[64];
                const char *v = cJSON_IsString(it) ? it->valuestring : num;
                if (!cJSON_IsString(it)) snprintf(num, sizeof num, "%g", it->valuedouble);
                csl_buf_printf(&b, "%s%s=%s", b.len ? "," : "", it->string, v);
            }
            s->label_selector = csl_buf_steal(&b);
        }
    }
    return 0;
}

/* "name" or "ns/name" for messages. */
static const char *obj_label(const cJSON *o, char *buf, size_t sz)
{
    const char *n = csl_kube_obj_name(o);
    snprintf(buf, sz, "%s", n ? n : "?");
    return buf;
}

/* ---------------------------------------------------------------- watching */

typedef struct watcher {
    csl_informer *inf;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t gen; /* bumped by every change */
} watcher;

static void bump(watcher *w)
{
    pthread_mutex_lock(&w->mu);
    w->gen++;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}
static void w_add(const cJSON *o, void *ctx)
{
    (void)o;
    bump(ctx);
}
static void w_update(const cJSON *a, const cJSON *b, void *ctx)
{
    (void)a;
    (void)b;
    bump(ctx);
}
static void w_delete(const cJSON *o, bool unknown, void *ctx)
{
    (void)o;
    (void)unknown;
    bump(ctx);
}

static int watcher_start(sr_ctx *c, const selection *s, watcher *w, int64_t deadline_ns,
                         char *err, size_t errsz)
{
    memset(w, 0, sizeof *w);
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cv, &ca);
    pthread_condattr_destroy(&ca);
    csl_informer_options io = {.reflector = {.resource = s->kr.res,
                                             .namespace = s->ns[0] ? s->ns : NULL,
                                             .label_selector = s->label_selector,
                                             .seed = c->seed,
                                             .name = "scenario-step"}};
    char field[300];
    if (s->n_names == 1 && !s->where) {
        snprintf(field, sizeof field, "metadata.name=%s", s->names[0]);
        io.reflector.field_selector = field;
    }
    if (!(w->inf = csl_informer_new(c->kube, &io, err, errsz))) return -1;
    csl_informer_handler h = {.on_add = w_add, .on_update = w_update, .on_delete = w_delete,
                              .ctx = w};
    if (csl_informer_add_handler(w->inf, &h) < 0 || csl_informer_start(w->inf, err, errsz) < 0)
        return -1;
    int64_t left = deadline_ns - csl_mono_ns();
    long ms = left > 0 ? (long)(left / 1000000) : 0;
    if (ms < 5000) ms = 5000; /* a sync is owed even to a short step */
    if (!csl_informer_wait_synced(w->inf, ms)) {
        snprintf(err, errsz, "could not list %s in %s (is the API server up?)", s->kr.plural,
                 s->ns[0] ? s->ns : "the cluster");
        return -1;
    }
    return 0;
}

static void watcher_stop(watcher *w)
{
    if (w->inf) csl_informer_free(w->inf);
    w->inf = NULL;
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
}

/* Waits for the next change after gen, the deadline or ~250 ms (to notice
 * an interrupt), whichever is first. */
static void watcher_wait(watcher *w, uint64_t gen, int64_t deadline_ns)
{
    int64_t until = csl_mono_ns() + 250000000;
    if (until > deadline_ns) until = deadline_ns;
    struct timespec ts = {until / 1000000000, until % 1000000000};
    pthread_mutex_lock(&w->mu);
    while (w->gen == gen)
        if (pthread_cond_timedwait(&w->cv, &w->mu, &ts) != 0) break;
    pthread_mutex_unlock(&w->mu);
}

/* The cached objects (parsed copies), filtered by names and where. */
static cJSON *selected(watcher *w, const selection *s)
{
    cJSON *arr = cJSON_CreateArray();
    size_t n = 0;
    char **keys = csl_informer_keys(w->inf, &n);
    for (size_t i = 0; arr && keys && i < n; i++) {
        cJSON *o = csl_informer_get(w->inf, keys[i]);
        if (!o) continue;
        const char *nm = csl_kube_obj_name(o);
        bool keep = true;
        if (s->names) {
            keep = false;
            for (size_t k = 0; k < s->n_names && !keep; k++) keep = nm && !strcmp(nm, s->names[k]);
        }
        if (keep && s->where) keep = sr_match(s->where, o, NULL);
        if (keep)
            cJSON_AddItemToArray(arr, o);
        else
            cJSON_Delete(o);
    }
    csl_informer_keys_free(keys, n);
    return arr;
}

static const cJSON *find_named(const cJSON *arr, const char *name)
{
    const cJSON *o;
    cJSON_ArrayForEach(o, arr)
    {
        const char *n = csl_kube_obj_name(o);
        if (n && !strcmp(n, name)) return o;
    }
    return NULL;
}

/* Whether the selection holds now: every selected object matches expected
 * (NULL: no tree to match), the count agrees, or (deleted) nothing is left.
 * why gets what was seen when it does not hold; matched (may be NULL) gets
 * the objects that do match, for error's message. */
static bool evaluate(const selection *s, const cJSON *objs, const cJSON *expected, bool deleted,
                     csl_buf *why, csl_buf *matched)
{
    char lb[300];
    bool ok = true;
    int listed = 0;
    if (s->names) {
        for (size_t i = 0; i < s->n_names; i++) {
            const cJSON *o = find_named(objs, s->names[i]);
            if (deleted) {
                if (o) {
                    ok = false;
                    if (listed++ < MAX_LISTED)
                        csl_buf_printf(why, "%s: still present%s\n", s->names[i],
                                       cJSON_GetObjectItemCaseSensitive(
                                           cJSON_GetObjectItemCaseSensitive(o, "metadata"),
                                           "deletionTimestamp")
                                           ? " (deleting; finalizers not released)"
                                           : "");
                }
                continue;
            }
            if (!o) {
                ok = false;
                if (listed++ < MAX_LISTED)
                    csl_buf_printf(why, "%s: not found%s\n", s->names[i],
                                   s->where ? " (or it does not match where)" : "");
                continue;
            }
            csl_buf d = CSL_BUF_INIT;
            if (expected && !sr_match(expected, o, &d)) {
                ok = false;
                if (listed++ < MAX_LISTED) csl_buf_printf(why, "%s:\n%s", s->names[i], csl_buf_str(&d));
            } else if (matched && matched->len < 4096) {
                csl_buf_printf(matched, "%s: ", s->names[i]);
                sr_render(o, RENDER_MAX, matched);
                csl_buf_putc(matched, '\n');
            }
            csl_buf_free(&d);
        }
        if (listed > MAX_LISTED) csl_buf_printf(why, "… and %d more\n", listed - MAX_LISTED);
        return ok;
    }
    int n = cJSON_GetArraySize(objs);
    if (deleted) {
        if (n == 0) return true;
        const cJSON *o;
        cJSON_ArrayForEach(o, objs) if (listed++ < MAX_LISTED)
            csl_buf_printf(why, "%s: still present\n", obj_label(o, lb, sizeof lb));
        return false;
    }
    if (s->count) {
        cJSON *num = cJSON_CreateNumber(n);
        bool cnt_ok;
        if (cJSON_IsNumber(s->count)) {
            cnt_ok = (double)n == s->count->valuedouble;
            if (!cnt_ok)
                csl_buf_printf(why, "count: expected %g objects, got %d\n", s->count->valuedouble, n);
        } else {
            csl_buf d = CSL_BUF_INIT;
            cnt_ok = sr_match(s->count, num, &d);
            if (!cnt_ok) csl_buf_printf(why, "count (%d objects): %s", n, csl_buf_str(&d));
            csl_buf_free(&d);
        }
        cJSON_Delete(num);
        if (!cnt_ok) ok = false;
    } else if (n == 0) {
        csl_buf_printf(why, "no object is selected%s\n", s->where ? " (after where)" : "");
        ok = false;
    }
    const cJSON *o;
    cJSON_ArrayForEach(o, objs)
    {
        csl_buf d = CSL_BUF_INIT;
        if (expected && !sr_match(expected, o, &d)) {
            ok = false;
            if (listed++ < MAX_LISTED)
                csl_buf_printf(why, "%s:\n%s", obj_label(o, lb, sizeof lb), csl_buf_str(&d));
        } else if (matched && matched->len < 4096) {
            csl_buf_printf(matched, "%s: ", obj_label(o, lb, sizeof lb));
            sr_render(o, RENDER_MAX, matched);
            csl_buf_putc(matched, '\n');
        }
        csl_buf_free(&d);
    }
    if (listed > MAX_LISTED) csl_buf_printf(why, "… and %d more\n", listed - MAX_LISTED);
    return ok;
}

/* Indents every line of text by two spaces into out. */
static void indent_into(csl_buf *out, const char *text)
{
    const char *p = text;
    while (*p) {
        const char *e = strchr(p, '\n');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        csl_buf_printf(out, "  %.*s\n", (int)n, p);
        p += n + (e ? 1 : 0);
    }
}

typedef enum { UNTIL_HOLDS, WHILE_NOT_HOLDS } watch_mode;

/* The longest a wait lets changes pile up before it looks again. */
#define EVAL_GAP_MAX_NS 250000000LL

/* The watch loop of wait, assert and error. UNTIL_HOLDS: passes as soon
 * as the selection holds, fails at the deadline. WHILE_NOT_HOLDS: fails
 * as soon as it holds, passes at the deadline (error with for:). */
static void watch_selection(sr_ctx *c, const sr_op *op, const selection *s, const cJSON *expected,
                            bool deleted, watch_mode mode, int64_t deadline_ns, const char *what,
                            sr_outcome *out)
{
    watcher w;
    char err[512] = "";
    int64_t start = csl_mono_ns();
    if (watcher_start(c, s, &w, deadline_ns, err, sizeof err) < 0) {
        sr_outcome_fail(out, c, op, SR_ERROR, "%s", err);
        watcher_stop(&w);
        return;
    }
    csl_buf why = CSL_BUF_INIT, matched = CSL_BUF_INIT;
    for (;;) {
        pthread_mutex_lock(&w.mu);
        uint64_t gen = w.gen;
        pthread_mutex_unlock(&w.mu);
        csl_buf_reset(&why);
        csl_buf_reset(&matched);
        int64_t t_eval = csl_mono_ns();
        cJSON *objs = selected(&w, s);
        bool holds = evaluate(s, objs, expected, deleted, &why, &matched);
        cJSON_Delete(objs);
        t_eval = csl_mono_ns() - t_eval;
        if (mode == UNTIL_HOLDS && holds) break;
        if (mode == WHILE_NOT_HOLDS && holds) {
            sr_outcome_fail(out, c, op, SR_FAIL, "%s held after %.1fs (it must not):", what,
                            sr_ctx_scen_s(c, csl_mono_ns() - start));
            csl_buf_puts(&out->diff, csl_buf_str(&matched));
            break;
        }
        if (sr_ctx_interrupted(c)) {
            sr_outcome_fail(out, c, op, SR_ERROR, "interrupted");
            break;
        }
        if (csl_mono_ns() >= deadline_ns) {
            if (mode == UNTIL_HOLDS) {
                sr_outcome_fail(out, c, op, SR_FAIL, "%s: not reached within %.1fs; last seen:\n",
                                what, sr_ctx_scen_s(c, deadline_ns - start));
                indent_into(&out->msg, csl_buf_str(&why));
                /* No trailing newline: the message is lines, not a file. */
                while (out->msg.len && out->msg.data[out->msg.len - 1] == '\n')
                    out->msg.data[--out->msg.len] = 0;
                csl_buf_puts(&out->diff, csl_buf_str(&why));
            }
            break;
        }
        watcher_wait(&w, gen, deadline_ns);
        /* Each look at the selection reads every object again: while
         * changes pour in (1,000 objects going Ready), look at most every
         * 4 evaluations' time (up to 250 ms), so waiting costs at most a
         * fifth of a core, whatever the size of the selection. */
        int64_t gap = t_eval * 4 < EVAL_GAP_MAX_NS ? t_eval * 4 : EVAL_GAP_MAX_NS;
        int64_t until = csl_mono_ns() + gap;
        if (until > deadline_ns) until = deadline_ns;
        if (gap > 1000000 && until > csl_mono_ns()) csl_sleep_ns(until - csl_mono_ns());
    }
    csl_buf_free(&why);
    csl_buf_free(&matched);
    watcher_stop(&w);
}

/* "status.phase" + value → {"status":{"phase":value}}. */
static cJSON *tree_of_path(const char *path, const cJSON *value)
{
    cJSON *root = cJSON_CreateObject(), *cur = root;
    char *copy = strdup(path);
    if (!root || !copy) {
        cJSON_Delete(root);
        free(copy);
        return NULL;
    }
    char *save = NULL;
    char *seg = strtok_r(copy, ".", &save);
    while (seg) {
        char *next = strtok_r(NULL, ".", &save);
        if (next) {
            cJSON *o = cJSON_AddObjectToObject(cur, seg);
            if (!o) break;
            cur = o;
        } else {
            cJSON_AddItemToObject(cur, seg, value ? cJSON_Duplicate(value, true) : cJSON_CreateNull());
        }
        seg = next;
    }
    free(copy);
    return root;
}

/* ---------------------------------------------------------------- wait / assert / error */

void sr_op_wait(sr_ctx *c, const sr_op *op, int64_t deadline_ns, sr_outcome *out)
{
    selection s;
    if (selection_parse(c, op, &s, out) < 0) goto done;
    const cJSON *cond = cJSON_GetObjectItemCaseSensitive(s.spec, "condition");
    const cJSON *field = cJSON_GetObjectItemCaseSensitive(s.spec, "field");
    const cJSON *match = cJSON_GetObjectItemCaseSensitive(s.spec, "match");
    const cJSON *del = cJSON_GetObjectItemCaseSensitive(s.spec, "deleted");
    cJSON *expected = NULL;
    char what[300];
    if (cond) {
        expected = cJSON_CreateObject();
        cJSON *st = cJSON_AddObjectToObject(expected, "status");
        cJSON *arr = cJSON_AddArrayToObject(st, "conditions");
        cJSON_AddItemToArray(arr, cJSON_Duplicate(cond, true));
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(cond, "type");
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(cond, "status");
        snprintf(what, sizeof what, "condition %s=%s", cJSON_IsString(t) ? t->valuestring : "?",
                 cJSON_IsString(v) ? v->valuestring : "?");
    } else if (field) {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(field, "path");
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(field, "value");
        expected = tree_of_path(cJSON_IsString(p) ? p->valuestring : "", v);
        csl_buf vb = CSL_BUF_INIT;
        sr_render(v, 100, &vb);
        snprintf(what, sizeof what, "field %s = %s", cJSON_IsString(p) ? p->valuestring : "?",
                 csl_buf_str(&vb));
        csl_buf_free(&vb);
    } else if (match) {
        expected = cJSON_Duplicate(match, true);
        snprintf(what, sizeof what, "match");
    } else {
        snprintf(what, sizeof what, "deletion");
    }
    char full[400];
    snprintf(full, sizeof full, "%s %s", s.kind, what);
    watch_selection(c, op, &s, expected, cJSON_IsTrue(del), UNTIL_HOLDS, deadline_ns, full, out);
    cJSON_Delete(expected);
done:
    selection_free(&s);
}

void sr_op_assert(sr_ctx *c, const sr_op *op, int64_t deadline_ns, sr_outcome *out)
{
    if (cJSON_GetObjectItemCaseSensitive(op->spec, "cloud") ||
        cJSON_GetObjectItemCaseSensitive(op->spec, "journal")) {
        sr_cloud_check(c, op, deadline_ns, true, out);
        return;
    }
    selection s;
    if (selection_parse(c, op, &s, out) == 0) {
        char what[100];
        snprintf(what, sizeof what, "assertion on %s", s.kind);
        watch_selection(c, op, &s, cJSON_GetObjectItemCaseSensitive(s.spec, "match"), false,
                        UNTIL_HOLDS, deadline_ns, what, out);
    }
    selection_free(&s);
}

void sr_op_error(sr_ctx *c, const sr_op *op, int64_t deadline_ns, sr_outcome *out)
{
    if (cJSON_GetObjectItemCaseSensitive(op->spec, "cloud") ||
        cJSON_GetObjectItemCaseSensitive(op->spec, "journal")) {
        sr_cloud_check(c, op, deadline_ns, false, out);
        return;
    }
    selection s;
    if (selection_parse(c, op, &s, out) == 0) {
        int64_t for_ns = sr_steps_duration(op->spec, "for", 0);
        /* Without for: a single look (the deadline is now); with it, the
         * window, within the op's own timeout. */
        int64_t until = csl_mono_ns() + sr_ctx_real_ns(c, for_ns);
        if (for_ns && until > deadline_ns) until = deadline_ns;
        char what[100];
        snprintf(what, sizeof what, "the match on %s", s.kind);
        watch_selection(c, op, &s, cJSON_GetObjectItemCaseSensitive(s.spec, "match"), false,
                        WHILE_NOT_HOLDS, for_ns ? until : csl_mono_ns(), what, out);
    }
    selection_free(&s);
}

/* ---------------------------------------------------------------- apply */

typedef struct apply_job {
    sr_ctx *c;
    const sr_op *op;
    const cJSON *objects; /* op->objects */
    long count;
    bool has_index;
    const cJSON *expect;  /* {error: true, code, message} or NULL */
    int64_t deadline_ns;
    pthread_mutex_t mu;
    long next;  /* the next item: index × objects + k */
    long total;
    long created, updated, refused, failed;
    csl_buf errors; /* the first few failures */
    int n_errors;
} apply_job;

static void job_error(apply_job *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void job_error(apply_job *j, const char *fmt, ...)
{
    pthread_mutex_lock(&j->mu);
    j->failed++;
    if (j->n_errors++ < 5) {
        va_list ap;
        va_start(ap, fmt);
        csl_buf_vprintf(&j->errors, fmt, ap);
        va_end(ap);
        csl_buf_putc(&j->errors, '\n');
    }
    pthread_mutex_unlock(&j->mu);
}

/* Whether a refusal is the one expect describes; why says what differed. */
static bool refusal_expected(const cJSON *expect, const csl_kube_error *ke, csl_buf *why)
{
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(expect, "code");
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(expect, "message");
    bool ok = true;
    if (cJSON_IsNumber(code) && (int)code->valuedouble != ke->status) {
        csl_buf_printf(why, "code: expected %d, got %d\n", (int)code->valuedouble, ke->status);
        ok = false;
    }
    if (msg) {
        cJSON *actual = cJSON_CreateString(ke->message);
        csl_buf d = CSL_BUF_INIT;
        if (!sr_match(msg, actual, &d)) {
            csl_buf_printf(why, "message: %s", csl_buf_str(&d));
            ok = false;
        }
        csl_buf_free(&d);
        cJSON_Delete(actual);
    }
    return ok;
}

static void apply_one(apply_job *j, long item)
{
    sr_ctx *c = j->c;
    long nobj = cJSON_GetArraySize(j->objects);
    long index = item / nobj;
    const cJSON *tmpl = cJSON_GetArrayItem(j->objects, (int)(item % nobj));
    sr_tvars tv = {.index = j->has_index ? index : -1, .ns = c->ns, .scenario = c->sc->name,
                   .run = c->run_id, .seed = c->seed, .vars = c->sc->setup.vars};
    char err[256] = "";
    cJSON *obj = sr_template_expand(tmpl, &tv, err, sizeof err);
    if (!obj) {
        job_error(j, "template: %s", err);
        return;
    }
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(obj, "kind");
    const cJSON *av = cJSON_GetObjectItemCaseSensitive(obj, "apiVersion");
    sr_kres kr;
    if (!cJSON_IsString(kind) ||
        sr_kind_resource(kind->valuestring, cJSON_IsString(av) ? av->valuestring : NULL, &kr) < 0) {
        job_error(j, "object %ld: no kind/apiVersion this runner can map to a resource", item);
        cJSON_Delete(obj);
        return;
    }
    cJSON *meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    if (!meta) meta = cJSON_AddObjectToObject(obj, "metadata");
    const char *ns = NULL;
    if (kr.res.namespaced) {
        ns = csl_kube_obj_namespace(obj);
        if (!ns) {
            cJSON_AddStringToObject(meta, "namespace", c->ns);
            ns = c->ns;
        }
    }
    const char *name = csl_kube_obj_name(obj);
    csl_kube_error ke;
    cJSON *got = csl_kube_create(c->kube, &kr.res, ns, obj, &ke);
    int64_t t = csl_mono_ns();
    if (got) {
        const char *uid = csl_kube_obj_uid(got);
        sr_ctx_record(c, cJSON_IsString(av) ? av->valuestring : NULL, kind->valuestring, ns,
                      csl_kube_obj_name(got), uid);
        if (!strcmp(kind->valuestring, "CloudServer") && uid && c->mon)
            sr_monitor_created(c->mon, uid, t);
        pthread_mutex_lock(&j->mu);
        j->created++;
        pthread_mutex_unlock(&j->mu);
        if (j->expect)
            job_error(j, "%s %s: the API server accepted it; expected a refusal", kind->valuestring,
                      name ? name : "?");
    } else if (ke.code == CSL_KUBE_ALREADY_EXISTS && name) {
        /* Create-or-update: the given fields merged into what is there
         * (an expected refusal may come from this update: a CEL rule on
         * the transition, like a disk shrink). */
        cJSON *meta_copy = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
        cJSON_DeleteItemFromObjectCaseSensitive(meta_copy, "resourceVersion");
        char *body = cJSON_PrintUnformatted(obj);
        cJSON *p = body ? csl_kube_patch(c->kube, &kr.res, ns, name, NULL, CSL_PATCH_MERGE, body,
                                         NULL, &ke)
                        : NULL;
        free(body);
        if (p && j->expect) {
            job_error(j, "%s %s: the API server accepted the update; expected a refusal",
                      kind->valuestring, name);
        } else if (p) {
            pthread_mutex_lock(&j->mu);
            j->updated++;
            pthread_mutex_unlock(&j->mu);
        } else if (j->expect) {
            csl_buf why = CSL_BUF_INIT;
            if (refusal_expected(j->expect, &ke, &why)) {
                pthread_mutex_lock(&j->mu);
                j->refused++;
                pthread_mutex_unlock(&j->mu);
            } else {
                job_error(j, "%s %s: the update was refused, but not as expected:\n%s  (the API server said: %s)",
                          kind->valuestring, name, csl_buf_str(&why), ke.message);
            }
            csl_buf_free(&why);
        } else {
            job_error(j, "%s %s exists; updating it failed: %s", kind->valuestring, name, ke.message);
        }
        cJSON_Delete(p);
    } else if (j->expect) {
        csl_buf why = CSL_BUF_INIT;
        if (refusal_expected(j->expect, &ke, &why)) {
            pthread_mutex_lock(&j->mu);
            j->refused++;
            pthread_mutex_unlock(&j->mu);
        } else {
            job_error(j, "%s %s: refused, but not as expected:\n%s  (the API server said: %s)",
                      kind->valuestring, name ? name : "?", csl_buf_str(&why), ke.message);
        }
        csl_buf_free(&why);
    } else {
        job_error(j, "%s %s: %s", kind->valuestring, name ? name : "?", ke.message);
    }
    cJSON_Delete(got);
    cJSON_Delete(obj);
}

static void *apply_worker(void *arg)
{
    apply_job *j = arg;
    for (;;) {
        pthread_mutex_lock(&j->mu);
        long item = j->next < j->total ? j->next++ : -1;
        pthread_mutex_unlock(&j->mu);
        if (item < 0 || sr_ctx_interrupted(j->c) || csl_mono_ns() >= j->deadline_ns) break;
        apply_one(j, item);
    }
    return NULL;
}

void sr_op_apply(sr_ctx *c, const sr_op *op, int64_t deadline_ns, sr_outcome *out)
{
    const cJSON *cnt = cJSON_GetObjectItemCaseSensitive(op->spec, "count");
    const cJSON *conc = cJSON_GetObjectItemCaseSensitive(op->spec, "concurrency");
    static const char *const skip[] = {"object", "objects", "file", NULL};
    cJSON *spec = sr_steps_expand(c, op, op->spec, skip, out);
    if (!spec) return;
    apply_job j = {.c = c, .op = op, .objects = op->objects, .deadline_ns = deadline_ns};
    j.has_index = cJSON_IsNumber(cnt);
    j.count = j.has_index ? (long)cnt->valuedouble : 1;
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive(spec, "expect");
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(exp, "error"))) j.expect = exp;
    long nobj = cJSON_GetArraySize(op->objects);
    j.total = j.count * nobj;
    if (j.total <= 0) {
        sr_outcome_fail(out, c, op, SR_ERROR, "nothing to apply");
        cJSON_Delete(spec);
        return;
    }
    long threads = cJSON_IsNumber(conc) ? (long)conc->valuedouble : (j.count < 16 ? j.count : 16);
    if (threads < 1) threads = 1;
    if (threads > j.total) threads = j.total;
    if (threads > 64) threads = 64;
    pthread_mutex_init(&j.mu, NULL);
    csl_buf_init(&j.errors);
    pthread_t *tids = calloc((size_t)threads, sizeof *tids);
    long started = 0;
    for (long i = 0; tids && i < threads - 1; i++)
        if (pthread_create(&tids[started], NULL, apply_worker, &j) == 0) started++;
    apply_worker(&j); /* this thread works too */
    for (long i = 0; i < started; i++) pthread_join(tids[i], NULL);
    free(tids);
    long done = j.created + j.updated + j.refused + j.failed;
    if (j.failed)
        sr_outcome_fail(out, c, op, j.expect ? SR_FAIL : SR_ERROR, "%ld of %ld objects failed:\n%s",
                        j.failed, j.total, csl_buf_str(&j.errors));
    if (sr_ctx_interrupted(c))
        sr_outcome_fail(out, c, op, SR_ERROR, "interrupted");
    else if (done < j.total)
        sr_outcome_fail(out, c, op, SR_FAIL, "timed out after %ld of %ld objects", done, j.total);
    csl_buf_free(&j.errors);
    pthread_mutex_destroy(&j.mu);
    cJSON_Delete(spec);
}

/* ---------------------------------------------------------------- patch / delete */

/* The objects a patch or delete acts on, as names: explicit names as they
 * are, else a list by selector, filtered by where. -1 with the outcome. */
static int resolve_names(sr_ctx *c, const sr_op *op, selection *s, sr_outcome *out)
{
    if (s->names) return 0;
    csl_kube_error ke;
    csl_kube_list_opts lo = {.label_selector = s->label_selector};
    cJSON *list = csl_kube_list_all(c->kube, &s->kr.res, s->ns[0] ? s->ns : NULL, &lo, &ke);
    if (!list) {
        sr_outcome_fail(out, c, op, SR_ERROR, "listing %s: %s", s->kr.plural, ke.message);
        return -1;
    }
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(list, "items");
    s->names = calloc((size_t)cJSON_GetArraySize(items) + 1, sizeof *s->names);
    const cJSON *o;
    cJSON_ArrayForEach(o, items)
    {
        if (s->where && !sr_match(s->where, o, NULL)) continue;
        const char *n = csl_kube_obj_name(o);
        if (n && s->names) s->names[s->n_names++] = strdup(n);
    }
    cJSON_Delete(list);
    if (s->count) {
        cJSON *num = cJSON_CreateNumber((double)s->n_names);
        csl_buf d = CSL_BUF_INIT;
        bool ok = cJSON_IsNumber(s->count) ? (double)s->n_names == s->count->valuedouble
                                           : sr_match(s->count, num, &d);
        if (!ok)
            sr_outcome_fail(out, c, op, SR_FAIL, "selected %zu %s, count expected %s%s", s->n_names,
                            s->kr.plural, cJSON_IsNumber(s->count) ? "" : "", csl_buf_str(&d));
        csl_buf_free(&d);
        cJSON_Delete(num);
        if (!ok) return -1;
    }
    return 0;
}

void sr_op_patch(sr_ctx *c, const sr_op *op, int64_t deadline_ns, sr_outcome *out)
{
    (void)deadline_ns;
    selection s;
    if (selection_parse(c, op, &s, out) < 0 || resolve_names(c, op, &s, out) < 0) goto done;
    const cJSON *patch = cJSON_GetObjectItemCaseSensitive(s.spec, "patch");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(s.spec, "type");
    const cJSON *sub = cJSON_GetObjectItemCaseSensitive(s.spec, "subresource");
    csl_kube_patch_type pt =
        cJSON_IsString(type) && !strcmp(type->valuestring, "json") ? CSL_PATCH_JSON : CSL_PATCH_MERGE;
    char *body = cJSON_PrintUnformatted(patch);
    if (!s.n_names) sr_outcome_fail(out, c, op, SR_FAIL, "no %s selected to patch", s.kr.plural);
    for (size_t i = 0; body && i < s.n_names; i++) {
        csl_kube_error ke;
        cJSON *r = csl_kube_patch(c->kube, &s.kr.res, s.ns[0] ? s.ns : NULL, s.names[i],
                                  cJSON_IsString(sub) ? sub->valuestring : NULL, pt, body, NULL, &ke);
        if (!r)
            sr_outcome_fail(out, c, op, ke.code == CSL_KUBE_INVALID || ke.code == CSL_KUBE_NOT_FOUND
                                            ? SR_FAIL
                                            : SR_ERROR,
                            "%s %s: %s", s.kind, s.names[i], ke.message);
        cJSON_Delete(r);
    }
    free(body);
done:
    selection_free(&s);
}

void sr_op_delete(sr_ctx *c, const sr_op *op, int64_t deadline_ns, sr_outcome *out)
{
    selection s;
    if (selection_parse(c, op, &s, out) < 0 || resolve_names(c, op, &s, out) < 0) goto done;
    for (size_t i = 0; i < s.n_names; i++) {
        csl_kube_error ke;
        /* Already gone is what a delete wants: not an error. */
        if (csl_kube_delete(c->kube, &s.kr.res, s.ns[0] ? s.ns : NULL, s.names[i], NULL, &ke) < 0 &&
            ke.code != CSL_KUBE_NOT_FOUND)
            sr_outcome_fail(out, c, op, SR_ERROR, "%s %s: %s", s.kind, s.names[i], ke.message);
    }
    const cJSON *wait = cJSON_GetObjectItemCaseSensitive(s.spec, "wait");
    if (out->status == SR_PASS && s.n_names && !cJSON_IsFalse(wait)) {
        /* The objects deleted, by name, whatever selected them. */
        s.where = NULL;
        s.count = NULL;
        char what[100];
        snprintf(what, sizeof what, "deletion of %s", s.kind);
        watch_selection(c, op, &s, NULL, true, UNTIL_HOLDS, deadline_ns, what, out);
    }
done:
    selection_free(&s);
}
