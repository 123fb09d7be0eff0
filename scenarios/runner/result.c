/* result.c — the run result model: a run owns its scenario results, each
 * owns its steps, checks, measurements and strings.
 *
 * Arrays grow by doubling, so an element pointer an appender returns stays
 * valid only until the next append to the same array (callers fill it at
 * once). The only shared structure is the run's scenario list, guarded by
 * the run's mutex; everything inside a scenario belongs to the one thread
 * running it (result.h). */
#include "result.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "csl/clock.h"

/* ---------------------------------------------------------------- helpers */

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* Makes room for one more element of size elem in *arr (length *n) and
 * returns it. The capacity is asked of the allocator rather than stored,
 * so arrays another part built with plain malloc grow safely too; growth
 * is geometric. */
static void *grow(void **arr, size_t n, size_t elem)
{
    if (!*arr || malloc_usable_size(*arr) < (n + 1) * elem) {
        size_t cap = n < 4 ? 4 : n * 2;
        void *p = realloc(*arr, cap * elem);
        if (!p) return NULL;
        *arr = p;
    }
    return (char *)*arr + n * elem;
}

void sr_set_str(char **field, const char *value)
{
    char *copy = dup_or_null(value);
    /* On no memory the field keeps its old value rather than losing it. */
    if (value && !copy) return;
    free(*field);
    *field = copy;
}

const char *sr_status_name(sr_status st)
{
    switch (st) {
    case SR_PASS:
        return "pass";
    case SR_FAIL:
        return "fail";
    case SR_ERROR:
        return "error";
    case SR_SKIP:
        return "skip";
    }
    return "unknown";
}

/* -------------------------------------------------------------------- run */

sr_run *sr_run_new(const char *run_id, const char *target)
{
    sr_run *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->run_id = dup_or_null(run_id ? run_id : "");
    r->target = dup_or_null(target ? target : "");
    if (!r->run_id || !r->target) {
        free(r->run_id);
        free(r->target);
        free(r);
        return NULL;
    }
    r->start_ms = csl_wall_ms();
    r->runner_cpu_s = -1;
    r->time_scale = 1;
    r->parallel = 1;
    pthread_mutex_init(&r->mu, NULL);
    return r;
}

static void scenario_free(sr_scenario_result *s)
{
    if (!s) return;
    free(s->name);
    free(s->file);
    free(s->ns);
    for (size_t i = 0; i < s->n_tags; i++) free(s->tags[i]);
    free(s->tags);
    free(s->message);
    for (size_t i = 0; i < s->n_steps; i++) {
        sr_step_result *st = &s->steps[i];
        free(st->name);
        free(st->file);
        free(st->message);
        free(st->diff);
        free(st->output);
    }
    free(s->steps);
    for (size_t i = 0; i < s->n_checks; i++) {
        free(s->checks[i].name);
        free(s->checks[i].unit);
        free(s->checks[i].message);
    }
    free(s->checks);
    free(s->ctr_s);
    free(s->recovery_s);
    for (size_t i = 0; i < s->n_timeline; i++) {
        free(s->timeline[i].kind);
        free(s->timeline[i].what);
    }
    free(s->timeline);
    free(s->samples);
    for (size_t i = 0; i < s->n_event_reasons; i++) free(s->event_reasons[i].key);
    free(s->event_reasons);
    free(s);
}

void sr_run_free(sr_run *r)
{
    if (!r) return;
    for (size_t i = 0; i < r->n_scenarios; i++) scenario_free(r->scenarios[i]);
    free(r->scenarios);
    free(r->run_id);
    free(r->target);
    free(r->runner_version);
    free(r->break_mode);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

sr_scenario_result *sr_run_add_scenario(sr_run *r, const char *name, const char *file)
{
    sr_scenario_result *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->name = dup_or_null(name ? name : "");
    s->file = dup_or_null(file ? file : "");
    if (!s->name || !s->file) goto fail;
    s->status = SR_PASS;
    s->start_ms = csl_wall_ms();
    s->time_scale = 1;
    s->seed = r->seed;
    /* Totals start "not measured": a report must not show a 0 nobody saw. */
    s->objects_created = -1;
    s->cloud_calls = s->kube_writes = -1;
    s->reconciles = s->reconcile_errors = -1;
    s->cpu_peak_cores = s->rss_peak_bytes = -1;

    pthread_mutex_lock(&r->mu);
    sr_scenario_result **slot = grow((void **)&r->scenarios, r->n_scenarios, sizeof *slot);
    if (slot) {
        *slot = s;
        r->n_scenarios++;
    }
    pthread_mutex_unlock(&r->mu);
    if (!slot) goto fail;
    return s;
fail:
    scenario_free(s);
    return NULL;
}

sr_status sr_run_status(const sr_run *r)
{
    bool error = false;
    for (size_t i = 0; i < r->n_scenarios; i++) {
        if (r->scenarios[i]->status == SR_FAIL) return SR_FAIL;
        if (r->scenarios[i]->status == SR_ERROR) error = true;
    }
    return error ? SR_ERROR : SR_PASS;
}

/* -------------------------------------------------------------- appenders */

sr_step_result *sr_result_add_step(sr_scenario_result *s, const char *name, const char *file,
                                   int line)
{
    sr_step_result *st = grow((void **)&s->steps, s->n_steps, sizeof *st);
    if (!st) return NULL;
    memset(st, 0, sizeof *st);
    st->name = dup_or_null(name ? name : "");
    st->file = dup_or_null(file);
    if (!st->name || (file && !st->file)) {
        free(st->name);
        free(st->file);
        return NULL;
    }
    st->line = line;
    st->status = SR_PASS;
    s->n_steps++;
    return st;
}

sr_check_result *sr_result_add_check(sr_scenario_result *s, sr_check_kind kind, const char *name,
                                     sr_status status, double value, double threshold,
                                     const char *unit, const char *message)
{
    sr_check_result *c = grow((void **)&s->checks, s->n_checks, sizeof *c);
    if (!c) return NULL;
    memset(c, 0, sizeof *c);
    c->name = dup_or_null(name ? name : "");
    c->unit = dup_or_null(unit ? unit : "");
    c->message = dup_or_null(message);
    if (!c->name || !c->unit || (message && !c->message)) {
        free(c->name);
        free(c->unit);
        free(c->message);
        return NULL;
    }
    c->kind = kind;
    c->status = status;
    c->value = value;
    c->threshold = threshold;
    s->n_checks++;
    return c;
}

sr_timeline_event *sr_result_add_event(sr_scenario_result *s, const char *kind, const char *what,
                                       double start_s, double end_s)
{
    sr_timeline_event *e = grow((void **)&s->timeline, s->n_timeline, sizeof *e);
    if (!e) return NULL;
    e->kind = dup_or_null(kind ? kind : "");
    e->what = dup_or_null(what ? what : "");
    if (!e->kind || !e->what) {
        free(e->kind);
        free(e->what);
        return NULL;
    }
    e->start_s = start_s;
    e->end_s = end_s;
    s->n_timeline++;
    return e;
}

int sr_result_add_sample(sr_scenario_result *s, const sr_sample *sample)
{
    sr_sample *p = grow((void **)&s->samples, s->n_samples, sizeof *p);
    if (!p) return -1;
    *p = *sample;
    s->n_samples++;
    return 0;
}

static int add_double(double **arr, size_t *n, double v)
{
    double *p = grow((void **)arr, *n, sizeof *p);
    if (!p) return -1;
    *p = v;
    (*n)++;
    return 0;
}

int sr_result_add_ctr(sr_scenario_result *s, double seconds)
{
    return add_double(&s->ctr_s, &s->n_ctr, seconds);
}

int sr_result_add_recovery(sr_scenario_result *s, double seconds)
{
    return add_double(&s->recovery_s, &s->n_recovery, seconds);
}

int sr_result_count(sr_scenario_result *s, const char *reason, long n)
{
    if (!reason) reason = "";
    for (size_t i = 0; i < s->n_event_reasons; i++)
        if (strcmp(s->event_reasons[i].key, reason) == 0) {
            s->event_reasons[i].n += n;
            return 0;
        }
    sr_count *c = grow((void **)&s->event_reasons, s->n_event_reasons, sizeof *c);
    if (!c) return -1;
    c->key = strdup(reason);
    if (!c->key) return -1;
    c->n = n;
    s->n_event_reasons++;
    return 0;
}
