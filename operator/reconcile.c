/* reconcile.c — the CloudServer and CloudServerSet decisions (see
 * reconcile.h and docs/operator-reconcile.md).
 *
 * Design idea: the decision is a function of what is persisted — the
 * object's metadata and status as last written, and the cloud as looked up
 * — never of what the operator remembers, so an operator killed at any
 * moment decides the same thing when it comes back. Three facts make that
 * safe for creates: the finalizer and the create-pending marker (with the
 * idempotency key) are written before the create; a create is only planned
 * after an uncached read and a lookup by uid tag; and the attempt number of
 * every create only rises (max of status.failoverCount, the marker and the
 * instances' attempt tags), so a new key is never a used one. */
#include "reconcile.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cron.h"
#include "csl/buf.h"
#include "csl/clock.h"
#include "csl/units.h"

/* ---------------------------------------------------------------- strings */

static void set_str(char *dst, size_t n, const char *src)
{
    if (!n) return;
    if (!src) src = "";
    size_t len = strlen(src);
    if (len >= n) len = n - 1;
    memcpy(dst, src, len);
    dst[len] = '\0';
}

/* vsnprintf that marks a cut message with "..." so a reader knows. */
static void vformat(char *dst, size_t n, const char *fmt, va_list ap)
{
    int w = vsnprintf(dst, n, fmt, ap);
    if (w >= 0 && (size_t)w >= n && n > 4) memcpy(dst + n - 4, "...", 4);
}

static void format(char *dst, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void format(char *dst, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vformat(dst, n, fmt, ap);
    va_end(ap);
}

/* "5m0s"-style durations for messages. */
static void fmt_dur(int64_t ms, char out[32])
{
    csl_duration_format(ms * 1000000, out, 32);
}

static void fmt_time(int64_t ms, char out[CSL_RFC3339_LEN])
{
    csl_rfc3339_s(ms, out);
}

/* ---------------------------------------------------------------- names */

static const char *const phase_names[] = {"",         "Pending",     "Provisioning", "Running",
                                          "Resizing", "FailingOver", "Deleting",     "Failed"};

const char *op_phase_name(op_phase p)
{
    return (unsigned)p < sizeof phase_names / sizeof phase_names[0] ? phase_names[p] : "";
}

static const char *const action_names[OP_ACT_COUNT] = {"ADD_FINALIZER",
                                                       "SET_CREATE_PENDING",
                                                       "REFRESH",
                                                       "CREATE",
                                                       "ADOPT",
                                                       "RESIZE",
                                                       "START",
                                                       "DELETE",
                                                       "UNTAG",
                                                       "SNAPSHOT",
                                                       "DELETE_SNAPSHOT",
                                                       "REMOVE_FINALIZER",
                                                       "EVENT"};

const char *op_action_name(op_action_kind k)
{
    return (unsigned)k < OP_ACT_COUNT ? action_names[k] : "?";
}

static const char *const inst_state_names[] = {"pending", "running",  "resizing",  "stopping",
                                               "stopped", "starting", "rebooting", "deleting",
                                               "crashed", "deleted"};
#define N_INST_STATES (sizeof inst_state_names / sizeof inst_state_names[0])

const char *op_inst_state_name(op_inst_state s)
{
    return (unsigned)s < N_INST_STATES ? inst_state_names[s] : "?";
}

static const char *const cond_names[OP_COND_COUNT] = {"Ready", "Synced", "CloudReachable",
                                                      "CloudAuthorized"};

const char *op_cond_type_name(op_cond_type t)
{
    return (unsigned)t < OP_COND_COUNT ? cond_names[t] : "?";
}

static const char *const cs_names[] = {"Unknown", "True", "False"};

op_config op_config_default(void)
{
    op_config c;
    memset(&c, 0, sizeof c);
    c.error_backoff = OP_BACKOFF_DEFAULT;
    c.poll_min_ms = 250;
    c.poll_max_ms = 15000;
    c.auth_retry_ms = 60000;
    c.throttle_min_ms = 1000;
    c.refused_retry_ms = 5 * 60 * 1000;
    c.backup_deadline_s = 3600;
    return c;
}

void op_idempotency_key(const char *uid, int attempt, char out[OP_KEY_LEN])
{
    if (attempt <= 0)
        set_str(out, OP_KEY_LEN, uid);
    else
        format(out, OP_KEY_LEN, "%s-attempt-%d", uid, attempt);
}

/* ---------------------------------------------------------------- zones */

/* Length of the region part of a zone: "hk-1a" → 4 ("hk-1"). A zone that
 * does not end in a letter after a digit is its own region. */
static size_t region_len(const char *z)
{
    size_t n = strlen(z);
    if (n >= 2 && z[n - 1] >= 'a' && z[n - 1] <= 'z' && z[n - 2] >= '0' && z[n - 2] <= '9')
        return n - 1;
    return n;
}

static bool same_region(const char *a, const char *b)
{
    size_t la = region_len(a), lb = region_len(b);
    return la == lb && strncmp(a, b, la) == 0;
}

const char *op_next_zone(const op_config *cfg, const char *spec_zone, const char *failed)
{
    if (!spec_zone || !failed) return NULL;
    bool seen = strcmp(failed, spec_zone) == 0;
    for (size_t i = 0; cfg && i < cfg->n_zones; i++) {
        const char *z = cfg->zones[i];
        if (!z || !same_region(z, spec_zone) || strcmp(z, spec_zone) == 0) continue;
        bool dup = false;
        for (size_t j = 0; j < i; j++)
            if (cfg->zones[j] && strcmp(cfg->zones[j], z) == 0) dup = true;
        if (dup) continue;
        if (seen) return z;
        if (strcmp(z, failed) == 0) seen = true;
    }
    return NULL;
}

/* ---------------------------------------------------------------- status diff */

static bool cond_differs(const op_condition *a, const op_condition *b)
{
    if (a->present != b->present) return true;
    if (!a->present) return false;
    return a->status != b->status || strcmp(a->reason, b->reason) != 0 ||
           strcmp(a->message, b->message) != 0 || a->observed_generation != b->observed_generation;
}

bool op_status_differs(const op_status *a, const op_status *b)
{
    if (a->phase != b->phase || strcmp(a->instance_id, b->instance_id) != 0 ||
        strcmp(a->zone, b->zone) != 0 || a->n_ips != b->n_ips ||
        a->observed_generation != b->observed_generation || a->failover_count != b->failover_count)
        return true;
    for (size_t i = 0; i < a->n_ips; i++)
        if (strcmp(a->ips[i], b->ips[i]) != 0) return true;
    const op_backups *x = &a->backups, *y = &b->backups;
    if (x->present != y->present) return true;
    if (x->present) {
        if (x->last_schedule_ms != y->last_schedule_ms ||
            x->last_successful_ms != y->last_successful_ms || x->n != y->n)
            return true;
        for (size_t i = 0; i < x->n; i++)
            if (strcmp(x->snaps[i].id, y->snaps[i].id) != 0 ||
                x->snaps[i].created_ms != y->snaps[i].created_ms)
                return true;
    }
    for (int t = 0; t < OP_COND_COUNT; t++)
        if (cond_differs(&a->cond[t], &b->cond[t])) return true;
    return false;
}

/* ================================================================ decide */

typedef struct ctx {
    const op_input *in;
    const op_object *o;
    const op_spec *sp;
    const op_status *prev;
    const op_cloud_view *view;
    const op_config *cfg;
    op_plan *p;
    op_status *st;
    int64_t now;  /* ms */
    int64_t nows; /* now, whole seconds, in ms: what status times hold */
    bool synced_set;
    bool refresh;      /* the plan became "refresh and decide again" */
    bool full;         /* the plan ran out of room */
    op_action scratch; /* where actions go when the plan is full */
} ctx;

static op_action *act(ctx *c, op_action_kind k)
{
    op_action *a;
    if (!c->full && c->p->n < OP_ACTIONS_MAX) {
        a = &c->p->actions[c->p->n++];
    } else {
        /* Beyond what the caps allow; should it happen, this action and
         * every later one wait for the next pass — later actions may rely
         * on earlier ones, never the reverse. */
        c->full = true;
        a = &c->scratch;
        c->p->requeue_ms = c->cfg->poll_min_ms;
    }
    memset(a, 0, sizeof *a);
    a->kind = k;
    return a;
}

static void event(ctx *c, op_event_type t, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void event(ctx *c, op_event_type t, const char *reason, const char *fmt, ...)
{
    op_action *a = act(c, OP_ACT_EVENT);
    a->ev_type = t;
    set_str(a->reason, sizeof a->reason, reason);
    va_list ap;
    va_start(ap, fmt);
    vformat(a->message, sizeof a->message, fmt, ap);
    va_end(ap);
}

static void cond(ctx *c, op_cond_type t, op_cond_status s, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void cond(ctx *c, op_cond_type t, op_cond_status s, const char *reason, const char *fmt, ...)
{
    op_condition *k = &c->st->cond[t];
    const op_condition *was = &c->prev->cond[t];
    k->present = true;
    k->status = s;
    set_str(k->reason, sizeof k->reason, reason);
    va_list ap;
    va_start(ap, fmt);
    vformat(k->message, sizeof k->message, fmt, ap);
    va_end(ap);
    k->observed_generation = c->o->generation;
    k->last_transition_ms = was->present && was->status == s && was->last_transition_ms
                                ? was->last_transition_ms
                                : c->nows;
    if (t == OP_COND_SYNCED) c->synced_set = true;
}

/* The previous status had this Ready=False reason (so an Event about it was
 * already recorded). */
static bool ready_was(const ctx *c, const char *reason)
{
    const op_condition *r = &c->prev->cond[OP_COND_READY];
    return r->present && r->status == OP_CS_FALSE && strcmp(r->reason, reason) == 0;
}

static bool synced_was(const ctx *c, const char *reason)
{
    const op_condition *r = &c->prev->cond[OP_COND_SYNCED];
    return r->present && r->status == OP_CS_FALSE && strcmp(r->reason, reason) == 0;
}

static void requeue(ctx *c, int64_t ms)
{
    if (c->full) return; /* stays at "soon" */
    if (ms < 1) ms = 1;
    if (!c->p->requeue_ms || ms < c->p->requeue_ms) c->p->requeue_ms = ms;
}

static int64_t poll_after(const ctx *c, int64_t since_ms)
{
    int64_t elapsed = since_ms > 0 ? c->now - since_ms : 0;
    return op_poll_delay_ms(elapsed, c->cfg->poll_min_ms, c->cfg->poll_max_ms);
}

/* Abandon the plan: re-read the object uncached, list by tag, and decide
 * again. Nothing before it is kept — not even the finalizer, which the
 * fresh plan writes in the same patch as the marker. */
static void refresh(ctx *c)
{
    c->p->n = 0;
    c->full = false;
    act(c, OP_ACT_REFRESH);
    c->refresh = true;
}

static bool can_create(const ctx *c)
{
    return c->o->fresh && c->view->searched_by_tag;
}

static void size_text(char *out, size_t n, int cpu, int64_t mem, int64_t disk)
{
    format(out, n, "%d CPU, %lld MiB memory, %lld GiB disk", cpu, (long long)mem, (long long)disk);
}

static void record_instance(ctx *c, const op_instance *it)
{
    set_str(c->st->instance_id, sizeof c->st->instance_id, it->id);
    set_str(c->st->zone, sizeof c->st->zone, it->zone);
    /* Addresses come once the instance first runs; a pending replacement has
     * none, and stale ones would mislead. */
    c->st->n_ips = it->n_ips;
    for (size_t i = 0; i < it->n_ips; i++) set_str(c->st->ips[i], OP_IP_LEN, it->ips[i]);
}

static bool is_live(op_inst_state s)
{
    return s != OP_INST_DELETING && s != OP_INST_DELETED;
}

/* An instance is ours when it carries our uid tag or status names it. */
static bool is_ours(const ctx *c, const op_instance *i)
{
    return i->tagged || (c->prev->instance_id[0] && strcmp(i->id, c->prev->instance_id) == 0);
}

/* The instance that is the object's: the live one of ours with the highest
 * attempt; ties go to the one status names, then the newest. */
static const op_instance *choose(const ctx *c)
{
    const op_instance *best = NULL;
    for (size_t i = 0; i < c->view->n && i < OP_VIEW_MAX; i++) {
        const op_instance *x = &c->view->inst[i];
        if (!is_live(x->state) || !is_ours(c, x)) continue;
        if (!best) {
            best = x;
            continue;
        }
        bool x_cur = strcmp(x->id, c->prev->instance_id) == 0;
        bool b_cur = strcmp(best->id, c->prev->instance_id) == 0;
        if (x->attempt != best->attempt) {
            if (x->attempt > best->attempt) best = x;
        } else if (x_cur != b_cur) {
            if (x_cur) best = x;
        } else if (x->created_ms != best->created_ms) {
            if (x->created_ms > best->created_ms) best = x;
        } else if (strcmp(x->id, best->id) > 0) {
            best = x;
        }
    }
    return best;
}

/* The attempt number of the latest create this object decided. */
static int current_attempt(const ctx *c, const op_instance *it)
{
    int n = c->prev->failover_count;
    if (c->o->marker.valid && c->o->marker.attempt > n) n = c->o->marker.attempt;
    if (it && it->attempt > n) n = it->attempt;
    return n;
}

/* Creates that the cloud refused for this generation are not retried until
 * the spec changes (metadata.generation moves). */
static bool create_refused(const ctx *c)
{
    const op_condition *r = &c->prev->cond[OP_COND_READY];
    return r->present && r->status == OP_CS_FALSE && r->observed_generation == c->o->generation &&
           (strcmp(r->reason, "InvalidZone") == 0 || strcmp(r->reason, "InvalidImage") == 0 ||
            strcmp(r->reason, "InvalidSpec") == 0);
}

/* Plans the marker (when it does not already say so) and the create. The
 * caller has checked can_create and sets Ready. */
static void plan_create(ctx *c, int attempt, const char *zone, int64_t at_ms)
{
    char key[OP_KEY_LEN];
    op_idempotency_key(c->o->uid, attempt, key);
    const op_marker *m = &c->o->marker;
    if (!m->valid || strcmp(m->key, key) != 0 || strcmp(m->zone, zone) != 0 || m->at_ms != at_ms) {
        op_action *a = act(c, OP_ACT_SET_CREATE_PENDING);
        set_str(a->key, sizeof a->key, key);
        set_str(a->zone, sizeof a->zone, zone);
        a->attempt = attempt;
        a->at_ms = at_ms;
    }
    op_action *a = act(c, OP_ACT_CREATE);
    set_str(a->key, sizeof a->key, key);
    set_str(a->zone, sizeof a->zone, zone);
    a->attempt = attempt;
    a->at_ms = at_ms;
    char size[96];
    size_text(size, sizeof size, c->sp->cpu, c->sp->memory_mib, c->sp->disk_gib);
    event(c, OP_EV_NORMAL, "Creating",
          "creating an instance in zone %s (%s, image %s; attempt %d, "
          "idempotency key %s)",
          zone, size, c->sp->image, attempt, key);
    c->st->failover_count = attempt > c->st->failover_count ? attempt : c->st->failover_count;
    c->st->phase = attempt > 0 ? OP_PHASE_FAILING_OVER : OP_PHASE_PROVISIONING;
    c->st->instance_id[0] = '\0';
    c->st->zone[0] = '\0';
    c->st->n_ips = 0;
    requeue(c, c->cfg->poll_min_ms);
}

/* A create for an object without a live instance: resume the one the
 * marker names, or decide a new one; a refused create is held instead. */
static void first_create(ctx *c, int cur, bool resume)
{
    if (create_refused(c)) {
        c->st->phase = OP_PHASE_FAILED;
        return;
    }
    if (!can_create(c)) {
        refresh(c);
        return;
    }
    const op_marker *m = &c->o->marker;
    int attempt;
    const char *zone;
    int64_t at;
    if (resume && m->valid && m->attempt >= cur) { /* the create the marker names */
        attempt = m->attempt;
        zone = m->zone;
        at = m->at_ms;
    } else {
        /* A fresh key: "<uid>" only for the very first create, else one past
         * every attempt seen, so a used key is never reused. */
        attempt = cur == 0 && !m->present ? 0 : cur + 1;
        zone = c->sp->zone;
        at = c->nows;
    }
    plan_create(c, attempt, zone, at);
    cond(c, OP_COND_READY, OP_CS_FALSE, attempt > 0 ? "FailingOver" : "Provisioning",
         "creating an instance in zone %s", zone);
}

/* Replaces the instance old_id names — `old` is its view, NULL when it is
 * gone — if failover allows, else reports why not. why completes "instance
 * <id> …": "crashed", "vanished", "is being deleted". */
static void fail_over(ctx *c, const op_instance *old, const char *old_id, int cur,
                      const char *reason, const char *why)
{
    const op_spec *sp = c->sp;
    if (!sp->failover_enabled || cur >= sp->failover_max_attempts) {
        const char *r = !sp->failover_enabled ? reason : "FailoverExhausted";
        c->st->phase = OP_PHASE_FAILED;
        if (!sp->failover_enabled)
            cond(c, OP_COND_READY, OP_CS_FALSE, r,
                 "instance %s %s; failover is disabled (spec.failover.enabled), so it is not "
                 "replaced",
                 old_id, why);
        else
            cond(c, OP_COND_READY, OP_CS_FALSE, r,
                 "instance %s %s; %d replacement%s made, spec.failover.maxAttempts is %d", old_id,
                 why, cur, cur == 1 ? "" : "s", sp->failover_max_attempts);
        if (!ready_was(c, r)) event(c, OP_EV_WARNING, r, "%s", c->st->cond[OP_COND_READY].message);
        return;
    }
    if (!can_create(c)) {
        refresh(c);
        return;
    }
    if (old && old->state != OP_INST_DELETING && old->state != OP_INST_DELETED) {
        op_action *a = act(c, OP_ACT_DELETE);
        set_str(a->instance_id, sizeof a->instance_id, old->id);
    }
    int n = cur + 1;
    event(c, OP_EV_WARNING, "FailedOver",
          "instance %s %s; replacing it in zone %s (attempt %d of %d)", old_id, why, sp->zone, n,
          sp->failover_max_attempts);
    plan_create(c, n, sp->zone, c->nows);
    cond(c, OP_COND_READY, OP_CS_FALSE, "FailingOver", "instance %s %s; creating a replacement",
         old_id, why);
}

/* ------------------------------------------------------------ backups */

static int snap_cmp(const void *a, const void *b)
{
    const op_snapshot *x = *(const op_snapshot *const *)a, *y = *(const op_snapshot *const *)b;
    if (x->created_ms != y->created_ms) return x->created_ms < y->created_ms ? -1 : 1;
    return strcmp(x->id, y->id);
}

static void plan_backups(ctx *c, const op_instance *it)
{
    const op_spec *sp = c->sp;
    if (!sp->has_backup) return;
    op_backups *b = &c->st->backups;
    b->present = true;

    op_cron cron;
    char err[OP_CRON_ERR_LEN];
    if (op_cron_parse(sp->backup_schedule, &cron, err) < 0) {
        cond(c, OP_COND_SYNCED, OP_CS_FALSE, "InvalidSchedule",
             "spec.backup.schedule \"%s\": %s; no snapshots are taken until it is fixed",
             sp->backup_schedule, err);
        if (!synced_was(c, "InvalidSchedule"))
            event(c, OP_EV_WARNING, "InvalidSchedule", "%s", c->st->cond[OP_COND_SYNCED].message);
        return;
    }

    if (c->view->snapshots_listed) {
        const op_snapshot *avail[OP_VIEW_SNAPS_MAX], *all[OP_VIEW_SNAPS_MAX];
        size_t na = 0, nall = 0;
        for (size_t i = 0; i < c->view->n_snaps && i < OP_VIEW_SNAPS_MAX; i++) {
            const op_snapshot *s = &c->view->snaps[i];
            all[nall++] = s;
            if (s->state == OP_SNAP_AVAILABLE) avail[na++] = s;
        }
        qsort(avail, na, sizeof avail[0], snap_cmp);
        qsort(all, nall, sizeof all[0], snap_cmp);
        size_t retain = sp->backup_retain > 0 ? (size_t)sp->backup_retain : 1;
        size_t prune = na > retain ? na - retain : 0;
        size_t pruned = 0;
        char list[OP_MSG_LEN] = "";
        size_t len = 0;
        for (size_t i = 0; i < prune && pruned < OP_PRUNE_MAX; i++, pruned++) {
            op_action *a = act(c, OP_ACT_DELETE_SNAPSHOT);
            set_str(a->snapshot_id, sizeof a->snapshot_id, avail[i]->id);
            char t[CSL_RFC3339_LEN];
            fmt_time(avail[i]->created_ms, t);
            if (len < sizeof list)
                len += (size_t)snprintf(list + len, sizeof list - len, "%s%s (taken %s)",
                                        i ? ", " : "", avail[i]->id, t);
        }
        if (pruned)
            event(c, OP_EV_NORMAL, "SnapshotPruned",
                  "deleting %zu snapshot%s beyond spec.backup.retain (%zu): %s", pruned,
                  pruned == 1 ? "" : "s", retain, list);
        if (prune > pruned) requeue(c, c->cfg->poll_min_ms);
        /* The status lists what is kept — every snapshot but the pruned —
         * the newest OP_SNAPS_MAX of them if there are more. */
        const op_snapshot *kept[OP_VIEW_SNAPS_MAX];
        size_t nk = 0;
        for (size_t i = 0; i < nall; i++) {
            bool gone = false;
            for (size_t j = 0; j < pruned; j++)
                if (all[i] == avail[j]) gone = true;
            if (!gone) kept[nk++] = all[i];
            if (all[i]->state == OP_SNAP_CREATING) requeue(c, poll_after(c, all[i]->created_ms));
        }
        size_t from = nk > OP_SNAPS_MAX ? nk - OP_SNAPS_MAX : 0;
        b->n = 0;
        for (size_t i = from; i < nk; i++) {
            set_str(b->snaps[b->n].id, OP_ID_LEN, kept[i]->id);
            b->snaps[b->n].created_ms = kept[i]->created_ms / 1000 * 1000;
            b->n++;
        }
        if (na && avail[na - 1]->created_ms > c->prev->backups.last_successful_ms) {
            /* Completion is not reported, so "now" stands for it — but never
             * before the start, whatever the two clocks say. */
            int64_t cr = avail[na - 1]->created_ms;
            int64_t done = (cr + 999) / 1000 * 1000;
            b->last_successful_ms = done > c->nows ? done : c->nows;
            char t[CSL_RFC3339_LEN];
            fmt_time(avail[na - 1]->created_ms, t);
            event(c, OP_EV_NORMAL, "SnapshotCompleted", "snapshot %s (started %s) is available",
                  avail[na - 1]->id, t);
        }
    }

    int64_t last =
        c->prev->backups.last_schedule_ms ? c->prev->backups.last_schedule_ms : c->o->creation_ms;
    op_cron_missed m = op_cron_missed_since(&cron, last / 1000, c->now / 1000,
                                            c->cfg->backup_deadline_s, OP_CRON_MISSED_MAX);
    if (m.too_many) {
        char t[CSL_RFC3339_LEN];
        fmt_time(last, t);
        cond(c, OP_COND_SYNCED, OP_CS_FALSE, "TooManyMissedSchedules",
             "more than %d snapshot start times were missed since %s, so none is taken (as "
             "CronJob does); lower the operator's backup starting deadline or check the clock",
             OP_CRON_MISSED_MAX, t);
        if (!synced_was(c, "TooManyMissedSchedules"))
            event(c, OP_EV_WARNING, "TooManyMissedSchedules", "%s",
                  c->st->cond[OP_COND_SYNCED].message);
    } else if (m.time >= 0) {
        op_action *a = act(c, OP_ACT_SNAPSHOT);
        set_str(a->instance_id, sizeof a->instance_id, it->id);
        format(a->key, sizeof a->key, "%s-snap-%lld", c->o->uid, (long long)m.time);
        a->at_ms = m.time * 1000;
        b->last_schedule_ms = m.time * 1000;
        char t[CSL_RFC3339_LEN];
        fmt_time(m.time * 1000, t);
        event(c, OP_EV_NORMAL, "SnapshotStarted", "taking a snapshot of instance %s for %s%s",
              it->id, t, m.count > 1 ? " (the latest of several missed start times)" : "");
        requeue(c, c->cfg->poll_min_ms);
    }
    int64_t next = op_cron_next(&cron, c->now / 1000);
    if (next >= 0) requeue(c, next * 1000 - c->now);
}

/* ------------------------------------------------------------ live objects */

/* Status names `it` now; an instance we did not know about (no marker, not
 * in status) is worth an Event. */
static void adopt(ctx *c, const op_instance *it)
{
    if (strcmp(c->prev->instance_id, it->id) == 0) return;
    op_action *a = act(c, OP_ACT_ADOPT);
    set_str(a->instance_id, sizeof a->instance_id, it->id);
    const op_marker *m = &c->o->marker;
    if (!m->present || (m->valid && m->attempt != it->attempt))
        event(c, OP_EV_NORMAL, "Adopted", "adopted instance %s (%s), found by its tag %s=%s",
              it->id, op_inst_state_name(it->state), OP_TAG_UID, c->o->uid);
}

static void on_pending(ctx *c, const op_instance *it, int cur)
{
    const op_marker *m = &c->o->marker;
    int64_t start = m->valid && m->attempt == it->attempt && m->at_ms ? m->at_ms : it->created_ms;
    c->st->phase = it->attempt > 0 ? OP_PHASE_FAILING_OVER : OP_PHASE_PROVISIONING;
    int64_t limit = c->sp->timeout_create_ms;
    if (start > 0 && c->now - start >= limit) {
        char waited[32], lim[32];
        fmt_dur(c->now - start, waited);
        fmt_dur(limit, lim);
        char why[160];
        format(why, sizeof why, "is still pending after %s (spec.timeouts.create is %s)", waited,
               lim);
        const op_spec *sp = c->sp;
        if (sp->failover_enabled && cur < sp->failover_max_attempts) {
            if (!can_create(c)) {
                refresh(c);
                return;
            }
            event(c, OP_EV_WARNING, "ProvisioningTimeout",
                  "instance %s %s; deleting it and "
                  "creating another",
                  it->id, why);
            op_action *a = act(c, OP_ACT_DELETE);
            set_str(a->instance_id, sizeof a->instance_id, it->id);
            plan_create(c, cur + 1, sp->zone, c->nows);
            cond(c, OP_COND_READY, OP_CS_FALSE, "ProvisioningTimeout",
                 "instance %s did not start within spec.timeouts.create (%s); replacing it "
                 "(attempt %d of %d)",
                 it->id, lim, cur + 1, sp->failover_max_attempts);
            return;
        }
        c->st->phase = OP_PHASE_FAILED;
        cond(c, OP_COND_READY, OP_CS_FALSE, "ProvisioningTimeout",
             "instance %s did not start within spec.timeouts.create (%s); %s; it is kept and "
             "adopted if it ever starts",
             it->id, lim,
             !sp->failover_enabled ? "failover is disabled, so it is not replaced"
                                   : "spec.failover.maxAttempts replacements were made");
        if (!ready_was(c, "ProvisioningTimeout"))
            event(c, OP_EV_WARNING, "ProvisioningTimeout", "instance %s %s; giving up", it->id,
                  why);
        requeue(c, c->cfg->poll_max_ms);
        return;
    }
    cond(c, OP_COND_READY, OP_CS_FALSE, it->attempt > 0 ? "FailingOver" : "Provisioning",
         "waiting for instance %s to start", it->id);
    int64_t d = poll_after(c, start);
    if (start > 0 && start + limit - c->now < d) d = start + limit - c->now;
    requeue(c, d);
}

static bool resize_refused(const ctx *c)
{
    const op_condition *r = &c->prev->cond[OP_COND_READY];
    return r->present && r->status == OP_CS_FALSE && r->observed_generation == c->o->generation &&
           strcmp(r->reason, "ResizeRejected") == 0;
}

static void on_running(ctx *c, const op_instance *it)
{
    const op_spec *sp = c->sp;
    c->st->phase = OP_PHASE_RUNNING;
    bool cpu = it->cpu != sp->cpu, mem = it->memory_mib != sp->memory_mib;
    bool grow = it->disk_gib<sp->disk_gib, bigger = it->disk_gib> sp->disk_gib;
    if (cpu || mem || grow) {
        if (resize_refused(c)) return; /* Ready stays as the refusal left it */
        op_action *a = act(c, OP_ACT_RESIZE);
        set_str(a->instance_id, sizeof a->instance_id, it->id);
        if (cpu) a->cpu = sp->cpu;
        if (mem) a->memory_mib = sp->memory_mib;
        if (grow) a->disk_gib = sp->disk_gib;
        char from[96], to[96];
        size_text(from, sizeof from, it->cpu, it->memory_mib, it->disk_gib);
        size_text(to, sizeof to, sp->cpu, sp->memory_mib, grow ? sp->disk_gib : it->disk_gib);
        if (c->prev->observed_generation == c->o->generation)
            event(c, OP_EV_WARNING, "DriftDetected",
                  "instance %s was resized outside the operator (%s); resizing it back to %s",
                  it->id, from, to);
        else
            event(c, OP_EV_NORMAL, "Resizing", "resizing instance %s from %s to %s", it->id, from,
                  to);
        c->st->phase = OP_PHASE_RESIZING;
        cond(c, OP_COND_READY, OP_CS_FALSE, "Resizing", "resizing instance %s to %s", it->id, to);
        requeue(c, c->cfg->poll_min_ms);
        return;
    }
    if (bigger) {
        cond(c, OP_COND_READY, OP_CS_FALSE, "DiskLargerThanSpec",
             "instance %s has a %lld GiB disk but spec.disk asks for %lld GiB, and disks never "
             "shrink; set spec.disk to at least %lldGi",
             it->id, (long long)it->disk_gib, (long long)sp->disk_gib, (long long)it->disk_gib);
        if (!ready_was(c, "DiskLargerThanSpec"))
            event(c, OP_EV_WARNING, "DiskLargerThanSpec", "%s", c->st->cond[OP_COND_READY].message);
        return;
    }
    c->st->observed_generation = c->o->generation;
    cond(c, OP_COND_READY, OP_CS_TRUE, "InstanceRunning", "instance %s is running in zone %s",
         it->id, it->zone);
    plan_backups(c, it);
}

static void on_transition(ctx *c, const op_instance *it, const char *reason, const char *msg,
                          int64_t limit_ms, const char *timeout_reason, const char *timeout_field)
{
    int64_t since = it->updated_ms;
    if (limit_ms > 0 && since > 0 && c->now - since >= limit_ms) {
        char lim[32];
        fmt_dur(limit_ms, lim);
        cond(c, OP_COND_READY, OP_CS_FALSE, timeout_reason,
             "instance %s is still %s after %s (%s); still waiting", it->id,
             op_inst_state_name(it->state), timeout_field, lim);
        if (!ready_was(c, timeout_reason))
            event(c, OP_EV_WARNING, timeout_reason, "%s", c->st->cond[OP_COND_READY].message);
        requeue(c, c->cfg->poll_max_ms);
        return;
    }
    cond(c, OP_COND_READY, OP_CS_FALSE, reason, "instance %s %s", it->id, msg);
    requeue(c, poll_after(c, since));
}

static void decide_live(ctx *c)
{
    const op_object *o = c->o;
    if (!o->has_finalizer) act(c, OP_ACT_ADD_FINALIZER);

    const op_instance *it = choose(c);
    int cur = current_attempt(c, it);
    if (cur > c->st->failover_count) c->st->failover_count = cur;
    const op_marker *m = &o->marker;
    bool settled = op_marker_settled(o);
    /* The marker's create is spent when its instance exists but is going
     * (we deleted a stuck or crashed one and were stopped before writing
     * the next marker): that key must not be replayed. */
    bool spent = false;
    for (size_t i = 0; m->valid && i < c->view->n && i < OP_VIEW_MAX; i++) {
        const op_instance *x = &c->view->inst[i];
        if (is_ours(c, x) && !is_live(x->state) && x->attempt == m->attempt) spent = true;
    }
    /* A create newer than every live instance was decided: resume it; the
     * older instance was superseded. */
    bool pending_create =
        m->present && !settled && !spent && (!it || (m->valid && m->attempt > it->attempt));
    const op_instance *superseded = pending_create ? it : NULL;
    if (pending_create) it = NULL;

    for (size_t i = 0; i < c->view->n && i < OP_VIEW_MAX; i++) {
        const op_instance *x = &c->view->inst[i];
        if (x == it || !is_live(x->state) || !(x->tagged || x == superseded)) continue;
        op_action *a = act(c, OP_ACT_DELETE);
        set_str(a->instance_id, sizeof a->instance_id, x->id);
        event(c, OP_EV_WARNING, "DuplicateInstance",
              "deleting instance %s (attempt %d, %s): it carries this object's uid tag but "
              "instance %s is the object's",
              x->id, x->attempt, op_inst_state_name(x->state),
              it ? it->id : "(the one being created)");
    }

    if (!it) {
        if (pending_create || !c->prev->instance_id[0]) {
            first_create(c, cur, pending_create);
        } else if (!can_create(c)) {
            refresh(c); /* "vanished" needs the tag search */
        } else {
            /* Gone — or going, because we deleted it and were stopped
             * before its replacement was created. */
            bool going = false;
            for (size_t i = 0; i < c->view->n && i < OP_VIEW_MAX; i++)
                if (strcmp(c->view->inst[i].id, c->prev->instance_id) == 0) going = true;
            fail_over(c, NULL, c->prev->instance_id, cur, "InstanceVanished",
                      going ? "is being deleted" : "vanished");
        }
        return;
    }

    record_instance(c, it);

    switch (it->state) {
    case OP_INST_PENDING:
        on_pending(c, it, cur);
        break;
    case OP_INST_RUNNING:
        on_running(c, it);
        break;
    case OP_INST_RESIZING:
        c->st->phase = OP_PHASE_RESIZING;
        on_transition(c, it, "Resizing", "is resizing", c->sp->timeout_resize_ms, "ResizeTimeout",
                      "spec.timeouts.resize");
        break;
    case OP_INST_STOPPED: {
        c->st->phase = OP_PHASE_RUNNING;
        op_action *a = act(c, OP_ACT_START);
        set_str(a->instance_id, sizeof a->instance_id, it->id);
        event(c, OP_EV_WARNING, "DriftDetected",
              "instance %s was stopped outside the operator; starting it", it->id);
        cond(c, OP_COND_READY, OP_CS_FALSE, "InstanceStopped",
             "instance %s is stopped; starting it", it->id);
        requeue(c, c->cfg->poll_min_ms);
        break;
    }
    case OP_INST_STOPPING:
        c->st->phase = OP_PHASE_RUNNING;
        on_transition(c, it, "InstanceStopping", "is stopping; it is started again once stopped", 0,
                      NULL, NULL);
        break;
    case OP_INST_STARTING:
        c->st->phase = OP_PHASE_RUNNING;
        on_transition(c, it, "InstanceStarting", "is starting", 0, NULL, NULL);
        break;
    case OP_INST_REBOOTING:
        c->st->phase = OP_PHASE_RUNNING;
        on_transition(c, it, "InstanceRebooting", "is rebooting", 0, NULL, NULL);
        break;
    case OP_INST_CRASHED:
        fail_over(c, it, it->id, cur, "InstanceCrashed", "crashed");
        break;
    case OP_INST_DELETING:
    case OP_INST_DELETED:
        break; /* not live: never chosen */
    }
    /* Only an instance that stays the object's is adopted, not one this
     * very plan replaces. */
    if (!c->refresh && strcmp(c->st->instance_id, it->id) == 0) adopt(c, it);
}

/* ------------------------------------------------------------ deletion */

static void decide_delete(ctx *c)
{
    const op_spec *sp = c->sp;
    c->st->phase = OP_PHASE_DELETING;
    if (!c->view->searched_by_tag) { /* no orphan may be left behind */
        refresh(c);
        return;
    }
    size_t left = 0;
    int64_t since = 0;
    for (size_t i = 0; i < c->view->n && i < OP_VIEW_MAX; i++) {
        const op_instance *x = &c->view->inst[i];
        if (x->state == OP_INST_DELETED || !is_ours(c, x)) continue;
        if (sp->retain) {
            if (x->state == OP_INST_DELETING || !x->tagged) continue;
            op_action *a = act(c, OP_ACT_UNTAG);
            set_str(a->instance_id, sizeof a->instance_id, x->id);
            event(c, OP_EV_NORMAL, "Retained",
                  "spec.deletionPolicy is Retain: leaving instance %s (%s) and removing its "
                  "ownership tags",
                  x->id, op_inst_state_name(x->state));
            continue;
        }
        left++;
        int64_t t = x->updated_ms ? x->updated_ms : c->o->deletion_ms;
        if (x->state != OP_INST_DELETING) t = c->now;
        if (!since || t < since) since = t;
        if (x->state != OP_INST_DELETING) {
            op_action *a = act(c, OP_ACT_DELETE);
            set_str(a->instance_id, sizeof a->instance_id, x->id);
            event(c, OP_EV_NORMAL, "Deleting", "deleting instance %s (%s)", x->id,
                  op_inst_state_name(x->state));
        }
    }
    if (left) {
        int64_t limit = sp->timeout_delete_ms;
        if (since > 0 && c->now - since >= limit) {
            char lim[32];
            fmt_dur(limit, lim);
            cond(c, OP_COND_READY, OP_CS_FALSE, "DeleteTimeout",
                 "the instance is not gone after spec.timeouts.delete (%s); asking again and "
                 "waiting",
                 lim);
            if (!ready_was(c, "DeleteTimeout"))
                event(c, OP_EV_WARNING, "DeleteTimeout", "%s", c->st->cond[OP_COND_READY].message);
            for (size_t i = 0; i < c->view->n && i < OP_VIEW_MAX; i++) {
                const op_instance *x = &c->view->inst[i];
                if (x->state != OP_INST_DELETING || !is_ours(c, x)) continue;
                op_action *a = act(c, OP_ACT_DELETE);
                set_str(a->instance_id, sizeof a->instance_id, x->id);
            }
            requeue(c, c->cfg->poll_max_ms);
        } else {
            cond(c, OP_COND_READY, OP_CS_FALSE, "Deleting",
                 "waiting until the cloud no longer has the instance");
            requeue(c, poll_after(c, since));
        }
        return;
    }
    cond(c, OP_COND_READY, OP_CS_FALSE, "Deleting",
         sp->retain ? "the instance is retained; releasing the object"
                    : "the instance is gone; releasing the object");
    act(c, OP_ACT_REMOVE_FINALIZER);
    if (!sp->retain)
        event(c, OP_EV_NORMAL, "Deleted", "%s%s; removing the finalizer",
              c->prev->instance_id[0] ? "instance " : "no instance was created",
              c->prev->instance_id[0] ? c->prev->instance_id : "");
}

/* ------------------------------------------------------------ errors */

static void errtext(char *out, size_t n, const char *what, const op_cloud_error *e)
{
    if (e->http_status)
        format(out, n, "%s: HTTP %d %s%s%s", what, e->http_status, e->code, e->code[0] ? ": " : "",
               e->message);
    else
        format(out, n, "%s: %s", what, e->message[0] ? e->message : "no reply");
}

static const char *what_failed(const op_attempt *at)
{
    static const char *const w[OP_ACT_COUNT] = {"adding the finalizer",
                                                "writing the create-pending marker",
                                                "looking up the instance",
                                                "creating the instance",
                                                "adopting the instance",
                                                "resizing the instance",
                                                "starting the instance",
                                                "deleting the instance",
                                                "removing the instance's tags",
                                                "taking a snapshot",
                                                "deleting a snapshot",
                                                "removing the finalizer",
                                                "recording an event"};
    if (!at || !at->failed) return "looking up the instance";
    return (unsigned)at->kind < OP_ACT_COUNT ? w[at->kind] : "a cloud call";
}

/* A create that ran out of capacity (or whose fallback zone was refused). */
static void capacity(ctx *c, const op_action *a, const char *msg)
{
    const op_spec *sp = c->sp;
    if (a->attempt > 0) {
        const char *next = op_next_zone(c->cfg, sp->zone, a->zone);
        op_action *m = act(c, OP_ACT_SET_CREATE_PENDING);
        set_str(m->key, sizeof m->key, a->key);
        set_str(m->zone, sizeof m->zone, next ? next : sp->zone);
        m->attempt = a->attempt;
        m->at_ms = c->nows;
        if (next) {
            event(c, OP_EV_WARNING, "ZoneFallback",
                  "zone %s cannot take the replacement (%s); trying zone %s", a->zone, msg, next);
            cond(c, OP_COND_READY, OP_CS_FALSE, "InsufficientCapacity",
                 "zone %s has no capacity; the replacement goes to zone %s", a->zone, next);
            c->p->failed = false;
            requeue(c, c->cfg->poll_min_ms);
            return;
        }
        cond(c, OP_COND_READY, OP_CS_FALSE, "InsufficientCapacity",
             "no zone of the region has capacity for the replacement (last: %s); retrying from "
             "zone %s",
             msg, sp->zone);
    } else {
        cond(c, OP_COND_READY, OP_CS_FALSE, "InsufficientCapacity",
             "zone %s has no capacity (%s); retrying (a first create stays in spec.zone)", a->zone,
             msg);
    }
    if (!ready_was(c, "InsufficientCapacity"))
        event(c, OP_EV_WARNING, "InsufficientCapacity", "%s", c->st->cond[OP_COND_READY].message);
    requeue(c, op_backoff_delay_ms(&c->cfg->error_backoff, c->in->failures, c->in->rng));
}

/* The cloud refuses, for good, to delete or untag an instance: a 4xx
 * other than 404 (gone), 408 (a timeout), 409 (a state that passes) and
 * 429 (throttled) — 400/422 arrive as OP_ERR_INVALID, 405/413/… as
 * OP_ERR_RETRYABLE with their status. Retrying at the error back-off would
 * hammer a cloud that will say the same; retry slowly and say so. */
static bool refused_for_good(op_action_kind k, const op_cloud_error *e)
{
    if (k != OP_ACT_DELETE && k != OP_ACT_UNTAG) return false;
    if (e->cls == OP_ERR_INVALID) return true;
    return e->cls == OP_ERR_RETRYABLE && e->http_status >= 400 && e->http_status < 500 &&
           e->http_status != 404 && e->http_status != 408 && e->http_status != 409 &&
           e->http_status != 429;
}

static void refused(ctx *c, const op_action *a, const char *msg)
{
    bool untag = a->kind == OP_ACT_UNTAG;
    const char *r = untag ? "UntagRefused" : "DeleteRefused";
    char every[32];
    fmt_dur(c->cfg->refused_retry_ms, every);
    cond(c, OP_COND_READY, OP_CS_FALSE, r,
         "the cloud refuses to %s instance %s (%s); retried every %s — fix it in the cloud%s",
         untag ? "remove the ownership tags of" : "delete", a->instance_id, msg, every,
         c->o->deleting ? ", or remove the finalizer by hand to give the instance up" : "");
    cond(c, OP_COND_SYNCED, OP_CS_FALSE, r, "%s", msg);
    if (!synced_was(c, r)) event(c, OP_EV_WARNING, r, "%s", c->st->cond[OP_COND_READY].message);
    requeue(c, c->cfg->refused_retry_ms);
}

static void cloud_error(ctx *c, const op_attempt *at, const op_cloud_error *e)
{
    const op_action *a = at && at->failed ? &at->action : NULL;
    op_action_kind k = a ? at->kind : OP_ACT_REFRESH;
    char msg[OP_MSG_LEN];
    errtext(msg, sizeof msg, what_failed(at), e);
    int64_t backoff = op_backoff_delay_ms(&c->cfg->error_backoff, c->in->failures, c->in->rng);
    c->p->failed = true;
    if (a && refused_for_good(k, e)) {
        cond(c, OP_COND_CLOUD_REACHABLE, OP_CS_TRUE, "CloudReachable", "the cloud API answered");
        cond(c, OP_COND_CLOUD_AUTHORIZED, OP_CS_TRUE, "CredentialsAccepted",
             "the cloud accepted the credentials");
        refused(c, a, msg);
        return;
    }
    if (e->cls != OP_ERR_RETRYABLE)
        cond(c, OP_COND_CLOUD_REACHABLE, OP_CS_TRUE, "CloudReachable", "the cloud API answered");
    if (e->cls != OP_ERR_AUTH && e->cls != OP_ERR_RETRYABLE)
        cond(c, OP_COND_CLOUD_AUTHORIZED, OP_CS_TRUE, "CredentialsAccepted",
             "the cloud accepted the credentials");

    switch (e->cls) {
    case OP_ERR_NONE:
    case OP_ERR_RETRYABLE:
        cond(c, OP_COND_CLOUD_REACHABLE, OP_CS_FALSE, "CloudUnavailable", "%s", msg);
        cond(c, OP_COND_SYNCED, OP_CS_FALSE, "CloudError", "%s; retrying with back-off", msg);
        requeue(c, backoff);
        return;
    case OP_ERR_THROTTLED: {
        int64_t d = e->retry_after_ms > c->cfg->throttle_min_ms ? e->retry_after_ms
                                                                : c->cfg->throttle_min_ms;
        cond(c, OP_COND_SYNCED, OP_CS_FALSE, "Throttled",
             "%s; the cloud asked to retry later (Retry-After)", msg);
        requeue(c, d);
        return;
    }
    case OP_ERR_AUTH:
        cond(c, OP_COND_CLOUD_AUTHORIZED, OP_CS_FALSE,
             e->http_status == 403 ? "Forbidden" : "Unauthorized",
             "%s; check the token in the credentials Secret (it is re-read on every retry)", msg);
        cond(c, OP_COND_SYNCED, OP_CS_FALSE, e->http_status == 403 ? "Forbidden" : "Unauthorized",
             "%s", msg);
        requeue(c, c->cfg->auth_retry_ms);
        return;
    case OP_ERR_INVALID:
        if (k == OP_ACT_CREATE && a) {
            if (a->attempt > 0 && strcmp(e->code, "InvalidZone") == 0 &&
                strcmp(a->zone, c->sp->zone) != 0) {
                capacity(c, a, msg);
                return;
            }
            const char *r = strcmp(e->code, "InvalidZone") == 0    ? "InvalidZone"
                            : strcmp(e->code, "InvalidImage") == 0 ? "InvalidImage"
                                                                   : "InvalidSpec";
            c->st->phase = OP_PHASE_FAILED;
            cond(c, OP_COND_READY, OP_CS_FALSE, r,
                 "the cloud refused the create: %s; fix the spec (it is retried when the spec "
                 "changes)",
                 e->message);
            cond(c, OP_COND_SYNCED, OP_CS_FALSE, r, "%s", msg);
            event(c, OP_EV_WARNING, r, "%s", c->st->cond[OP_COND_READY].message);
            return; /* no requeue: only a spec change retries */
        }
        if (k == OP_ACT_RESIZE) {
            cond(c, OP_COND_READY, OP_CS_FALSE, "ResizeRejected",
                 "the cloud refused the resize: %s; it is retried when the spec changes",
                 e->message);
            cond(c, OP_COND_SYNCED, OP_CS_FALSE, "ResizeRejected", "%s", msg);
            event(c, OP_EV_WARNING, "ResizeRejected", "%s", c->st->cond[OP_COND_READY].message);
            return;
        }
        break;
    case OP_ERR_CAPACITY:
        if (k == OP_ACT_CREATE && a) {
            cond(c, OP_COND_SYNCED, OP_CS_FALSE, "InsufficientCapacity", "%s", msg);
            capacity(c, a, e->message);
            return;
        }
        break;
    case OP_ERR_CONFLICT:
        if (strcmp(e->code, "IdempotencyMismatch") == 0 && !synced_was(c, "IdempotencyMismatch"))
            event(c, OP_EV_WARNING, "IdempotencyMismatch",
                  "%s; the instance is looked up by its uid tag before the next try", msg);
        cond(c, OP_COND_SYNCED, OP_CS_FALSE,
             strcmp(e->code, "IdempotencyMismatch") == 0 ? "IdempotencyMismatch" : "InvalidState",
             "%s; retrying", msg);
        requeue(c, backoff);
        return;
    case OP_ERR_NOT_FOUND:
        if (k == OP_ACT_DELETE || k == OP_ACT_DELETE_SNAPSHOT || k == OP_ACT_UNTAG) {
            /* Gone is what a delete wants. Look again at once. */
            c->p->failed = false;
            cond(c, OP_COND_SYNCED, OP_CS_TRUE, "ReconcileSucceeded", "%s", "");
            requeue(c, c->cfg->poll_min_ms);
            return;
        }
        if (k == OP_ACT_CREATE && a) {
            /* The key's instance was created and is gone already: the key is
             * spent. Start a new attempt, as for a vanished instance. */
            const op_spec *sp = c->sp;
            int cur = current_attempt(c, NULL);
            if (a->attempt > cur) cur = a->attempt;
            if (!sp->failover_enabled || cur >= sp->failover_max_attempts) {
                const char *r = sp->failover_enabled ? "FailoverExhausted" : "InstanceVanished";
                c->st->phase = OP_PHASE_FAILED;
                cond(c, OP_COND_READY, OP_CS_FALSE, r,
                     "the instance created with key %s is already gone and %s", a->key,
                     sp->failover_enabled ? "spec.failover.maxAttempts replacements were made"
                                          : "failover is disabled");
                cond(c, OP_COND_SYNCED, OP_CS_FALSE, r, "%s", msg);
                if (!ready_was(c, r))
                    event(c, OP_EV_WARNING, r, "%s", c->st->cond[OP_COND_READY].message);
                return;
            }
            op_action *m = act(c, OP_ACT_SET_CREATE_PENDING);
            op_idempotency_key(c->o->uid, cur + 1, m->key);
            set_str(m->zone, sizeof m->zone, sp->zone);
            m->attempt = cur + 1;
            m->at_ms = c->nows;
            event(c, OP_EV_WARNING, "FailedOver",
                  "the instance created with key %s is already gone; replacing it (attempt %d "
                  "of %d)",
                  a->key, cur + 1, sp->failover_max_attempts);
            cond(c, OP_COND_SYNCED, OP_CS_FALSE, "InstanceVanished", "%s", msg);
            c->p->failed = false;
            requeue(c, c->cfg->poll_min_ms);
            return;
        }
        cond(c, OP_COND_SYNCED, OP_CS_FALSE, "InstanceNotFound", "%s; looking again", msg);
        requeue(c, c->cfg->poll_min_ms);
        return;
    }
    /* Anything else the cloud refused: report and retry with back-off. */
    if (k == OP_ACT_SNAPSHOT) {
        cond(c, OP_COND_SYNCED, OP_CS_FALSE, "SnapshotFailed", "%s", msg);
        event(c, OP_EV_WARNING, "SnapshotFailed", "%s; retrying", msg);
    } else {
        cond(c, OP_COND_SYNCED, OP_CS_FALSE, "CloudError", "%s; retrying with back-off", msg);
    }
    requeue(c, backoff);
}

static void creds_problem(ctx *c)
{
    const char *r = c->in->creds == OP_CREDS_MISSING ? "CredentialsMissing" : "CredentialsInvalid";
    const char *detail = c->in->creds_detail && c->in->creds_detail[0]
                             ? c->in->creds_detail
                             : (c->in->creds == OP_CREDS_MISSING
                                    ? "the credentials Secret or its \"token\" key is missing"
                                    : "the token in the credentials Secret is unusable");
    cond(c, OP_COND_CLOUD_AUTHORIZED, OP_CS_FALSE, r,
         "%s; fix the Secret (it is watched, no restart needed)", detail);
    cond(c, OP_COND_SYNCED, OP_CS_FALSE, r, "%s", detail);
    c->p->failed = true;
    requeue(c, c->cfg->auth_retry_ms);
}

/* Events for condition transitions that every path shares. */
static void transition_events(ctx *c)
{
    const op_condition *pr = c->prev->cond, *nw = c->st->cond;
    const op_condition *r = &nw[OP_COND_CLOUD_REACHABLE];
    if (r->present && r->status == OP_CS_FALSE &&
        !(pr[OP_COND_CLOUD_REACHABLE].present && pr[OP_COND_CLOUD_REACHABLE].status == OP_CS_FALSE))
        event(c, OP_EV_WARNING, "CloudUnreachable", "%s", r->message);
    if (r->present && r->status == OP_CS_TRUE && pr[OP_COND_CLOUD_REACHABLE].present &&
        pr[OP_COND_CLOUD_REACHABLE].status == OP_CS_FALSE)
        event(c, OP_EV_NORMAL, "CloudReachable", "the cloud API answers again");
    const op_condition *a = &nw[OP_COND_CLOUD_AUTHORIZED];
    const op_condition *pa = &pr[OP_COND_CLOUD_AUTHORIZED];
    if (a->present && a->status == OP_CS_FALSE &&
        !(pa->present && pa->status == OP_CS_FALSE && strcmp(pa->reason, a->reason) == 0))
        event(c, OP_EV_WARNING, a->reason, "%s", a->message);
    if (a->present && a->status == OP_CS_TRUE && pa->present && pa->status == OP_CS_FALSE)
        event(c, OP_EV_NORMAL, "CloudAuthorized", "the cloud accepts the credentials again");
    /* Ready after a wait or a repair. The first Ready of a create seen
     * running at once (the executor's quick poll) has none: its Creating
     * Event told the story, and one Event per create is enough. */
    const op_condition *rd = &nw[OP_COND_READY];
    if (rd->present && rd->status == OP_CS_TRUE && pr[OP_COND_READY].present &&
        pr[OP_COND_READY].status == OP_CS_FALSE) {
        char size[96];
        size_text(size, sizeof size, c->sp->cpu, c->sp->memory_mib, c->sp->disk_gib);
        event(c, OP_EV_NORMAL, "InstanceReady", "instance %s is running in zone %s (%s)",
              c->st->instance_id, c->st->zone, size);
    }
}

static void fill_missing_conditions(ctx *c)
{
    for (int t = 0; t < OP_COND_COUNT; t++)
        if (!c->st->cond[t].present)
            cond(c, (op_cond_type)t, OP_CS_UNKNOWN, "Reconciling", "not known yet");
}

void op_decide(const op_input *in, op_plan *out)
{
    static const op_cloud_view no_view;
    op_config defaults = op_config_default();
    memset(out, 0, sizeof *out);
    ctx c;
    memset(&c, 0, sizeof c);
    c.in = in;
    c.o = in->obj;
    c.sp = &in->obj->spec;
    c.prev = &in->obj->status;
    c.view = in->view ? in->view : &no_view;
    c.cfg = in->cfg ? in->cfg : &defaults;
    c.p = out;
    c.st = &out->status;
    c.now = in->now_ms;
    c.nows = in->now_ms - ((in->now_ms % 1000) + 1000) % 1000;
    out->status = *c.prev;

    /* Paused, or being deleted with nothing of ours left to guard: hands off. */
    if (c.o->paused || (c.o->deleting && !c.o->has_finalizer)) return;
    if (c.st->phase == OP_PHASE_NONE) c.st->phase = OP_PHASE_PENDING;

    if (in->attempt.failed) {
        /* A create runs only after its marker was written, so its attempt
         * is on record and counts, whatever the cloud answered. */
        int cur = current_attempt(&c, NULL);
        if (in->attempt.kind == OP_ACT_CREATE && in->attempt.action.attempt > cur)
            cur = in->attempt.action.attempt;
        if (cur > c.st->failover_count) c.st->failover_count = cur;
        if (in->attempt.kind == OP_ACT_CREATE && c.prev->instance_id[0]) {
            /* The instance status names is the one this create replaces
             * (crashed, vanished, stuck or superseded, and deleted by now):
             * status stops naming it, as the create's own plan would have,
             * so the marker is not taken for settled (op_marker_settled). */
            c.st->instance_id[0] = '\0';
            c.st->zone[0] = '\0';
            c.st->n_ips = 0;
            c.st->phase = OP_PHASE_FAILING_OVER;
            cond(&c, OP_COND_READY, OP_CS_FALSE, "FailingOver",
                 "instance %s is being replaced; the create failed", c.prev->instance_id);
        }
        cloud_error(&c, &in->attempt, &in->attempt.err);
    } else if (in->creds != OP_CREDS_OK) {
        creds_problem(&c);
    } else if (c.view->err.cls != OP_ERR_NONE) {
        cloud_error(&c, NULL, &c.view->err);
    } else {
        cond(&c, OP_COND_CLOUD_REACHABLE, OP_CS_TRUE, "CloudReachable", "the cloud API answered");
        cond(&c, OP_COND_CLOUD_AUTHORIZED, OP_CS_TRUE, "CredentialsAccepted",
             "the cloud accepted the credentials");
        if (c.o->deleting)
            decide_delete(&c);
        else
            decide_live(&c);
    }
    if (c.o->deleting) c.st->phase = OP_PHASE_DELETING; /* errors too */
    if (c.refresh) { /* decided again after the refresh: write nothing now */
        out->status = *c.prev;
        out->requeue_ms = 0;
        out->failed = false;
        return;
    }
    if (!c.synced_set) cond(&c, OP_COND_SYNCED, OP_CS_TRUE, "ReconcileSucceeded", "%s", "");
    fill_missing_conditions(&c);
    transition_events(&c);
    out->write_status = op_status_differs(&out->status, c.prev);
    /* Once the finalizer goes the object may vanish at once: a status write
     * after it could only fail. */
    for (size_t i = 0; i < out->n; i++)
        if (out->actions[i].kind == OP_ACT_REMOVE_FINALIZER) out->write_status = false;
}

/* ================================================================ JSON */

typedef struct jerr {
    char *buf;
    size_t n;
} jerr;

static int jfail(jerr *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int jfail(jerr *e, const char *fmt, ...)
{
    if (e->buf && e->n) {
        va_list ap;
        va_start(ap, fmt);
        vformat(e->buf, e->n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static const cJSON *jget(const cJSON *o, const char *k)
{
    return cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL;
}

static const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *v = jget(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const cJSON *jarray(const cJSON *v)
{
    return cJSON_IsArray(v) ? v : NULL;
}

static bool jint(const cJSON *v, int64_t *out)
{
    if (!cJSON_IsNumber(v)) return false;
    double d = v->valuedouble;
    if (!(d >= -9007199254740992.0 && d <= 9007199254740992.0) || d != (double)(int64_t)d)
        return false;
    *out = (int64_t)d;
    return true;
}

/* A required or defaulted string of at most n-1 bytes. */
static int req_str(jerr *e, const cJSON *o, const char *k, const char *path, char *dst, size_t n,
                   const char *dflt)
{
    const cJSON *v = jget(o, k);
    if (!v) {
        if (!dflt) return jfail(e, "%s: missing (it is required)", path);
        set_str(dst, n, dflt);
        return 0;
    }
    if (!cJSON_IsString(v)) return jfail(e, "%s: must be a string", path);
    if (strlen(v->valuestring) >= n) return jfail(e, "%s: longer than %zu characters", path, n - 1);
    if (!dflt && !v->valuestring[0]) return jfail(e, "%s: must not be empty", path);
    set_str(dst, n, v->valuestring);
    return 0;
}

static int req_int(jerr *e, const cJSON *o, const char *k, const char *path, int64_t lo, int64_t hi,
                   bool required, int64_t dflt, int64_t *out)
{
    const cJSON *v = jget(o, k);
    if (!v) {
        if (required) return jfail(e, "%s: missing (it is required)", path);
        *out = dflt;
        return 0;
    }
    int64_t x;
    if (!jint(v, &x) || x < lo || x > hi)
        return jfail(e, "%s: must be an integer %lld to %lld", path, (long long)lo, (long long)hi);
    *out = x;
    return 0;
}

/* A quantity that must be a whole number of `unit` bytes. */
static int quantity(jerr *e, const cJSON *o, const char *k, const char *path, int64_t unit,
                    const char *unit_name, int64_t *out)
{
    const cJSON *v = jget(o, k);
    if (!v) return jfail(e, "%s: missing (it is required)", path);
    if (!cJSON_IsString(v)) return jfail(e, "%s: must be a quantity string such as 4Gi", path);
    int64_t bytes;
    char why[CSL_UNITS_ERR_LEN];
    if (csl_quantity_parse_bytes(v->valuestring, &bytes, why) < 0)
        return jfail(e, "%s: %s", path, why);
    if (bytes <= 0 || bytes % unit != 0)
        return jfail(e, "%s: \"%s\" is not a whole number of %s", path, v->valuestring, unit_name);
    *out = bytes / unit;
    return 0;
}

static int duration(jerr *e, const cJSON *o, const char *k, const char *path, int64_t *out_ms)
{
    const cJSON *v = jget(o, k);
    if (!v) {
        *out_ms = 5 * 60 * 1000;
        return 0;
    }
    int64_t ns;
    char why[CSL_UNITS_ERR_LEN];
    if (!cJSON_IsString(v)) return jfail(e, "%s: must be a duration string such as 5m", path);
    if (csl_duration_parse(v->valuestring, &ns, why) < 0) return jfail(e, "%s: %s", path, why);
    if (ns < 1000000) return jfail(e, "%s: must be at least 1ms", path);
    *out_ms = ns / 1000000;
    return 0;
}

static int64_t jtime(const cJSON *o, const char *k)
{
    const char *s = jstr(o, k);
    int64_t ms;
    return s && csl_rfc3339_parse(s, &ms) == 0 ? ms : 0;
}

static int parse_spec(jerr *e, const cJSON *s, op_spec *sp)
{
    int64_t v;
    if (!cJSON_IsObject(s)) return jfail(e, "spec: missing or not an object");
    if (req_int(e, s, "cpu", "spec.cpu", 1, 128, true, 0, &v) < 0) return -1;
    sp->cpu = (int)v;
    if (quantity(e, s, "memory", "spec.memory", 1 << 20, "MiB", &sp->memory_mib) < 0) return -1;
    if (quantity(e, s, "disk", "spec.disk", 1 << 30, "GiB", &sp->disk_gib) < 0) return -1;
    if (req_str(e, s, "image", "spec.image", sp->image, sizeof sp->image, NULL) < 0) return -1;
    if (req_str(e, s, "zone", "spec.zone", sp->zone, sizeof sp->zone, NULL) < 0) return -1;
    if (req_str(e, s, "networkType", "spec.networkType", sp->network_type, sizeof sp->network_type,
                "standard") < 0)
        return -1;
    if (req_int(e, s, "ipCount", "spec.ipCount", 1, 256, false, 1, &v) < 0) return -1;
    sp->ip_count = (int)v;
    char policy[16];
    if (req_str(e, s, "deletionPolicy", "spec.deletionPolicy", policy, sizeof policy, "Delete") < 0)
        return -1;
    if (strcmp(policy, "Delete") != 0 && strcmp(policy, "Retain") != 0)
        return jfail(e, "spec.deletionPolicy: \"%s\" is not Delete or Retain", policy);
    sp->retain = strcmp(policy, "Retain") == 0;

    const cJSON *f = jget(s, "failover");
    if (f && !cJSON_IsObject(f)) return jfail(e, "spec.failover: must be an object");
    const cJSON *en = jget(f, "enabled");
    if (en && !cJSON_IsBool(en)) return jfail(e, "spec.failover.enabled: must be true or false");
    sp->failover_enabled = en ? cJSON_IsTrue(en) : true;
    if (req_int(e, f, "maxAttempts", "spec.failover.maxAttempts", 0, 100, false, 3, &v) < 0)
        return -1;
    sp->failover_max_attempts = (int)v;

    const cJSON *b = jget(s, "backup");
    if (b && !cJSON_IsNull(b)) {
        if (!cJSON_IsObject(b)) return jfail(e, "spec.backup: must be an object");
        sp->has_backup = true;
        if (req_str(e, b, "schedule", "spec.backup.schedule", sp->backup_schedule,
                    sizeof sp->backup_schedule, NULL) < 0)
            return -1;
        if (req_int(e, b, "retain", "spec.backup.retain", 1, 100, false, 7, &v) < 0) return -1;
        sp->backup_retain = (int)v;
    }

    const cJSON *t = jget(s, "timeouts");
    if (t && !cJSON_IsObject(t)) return jfail(e, "spec.timeouts: must be an object");
    if (duration(e, t, "create", "spec.timeouts.create", &sp->timeout_create_ms) < 0 ||
        duration(e, t, "resize", "spec.timeouts.resize", &sp->timeout_resize_ms) < 0 ||
        duration(e, t, "delete", "spec.timeouts.delete", &sp->timeout_delete_ms) < 0)
        return -1;

    const cJSON *cr = jget(s, "credentialsSecretRef");
    if (cr && req_str(e, cr, "name", "spec.credentialsSecretRef.name", sp->credentials_secret,
                      sizeof sp->credentials_secret, NULL) < 0)
        return -1;
    return 0;
}

static op_phase phase_parse(const char *s)
{
    for (size_t i = 1; s && i < sizeof phase_names / sizeof phase_names[0]; i++)
        if (strcmp(s, phase_names[i]) == 0) return (op_phase)i;
    return OP_PHASE_NONE;
}

/* Lenient: whatever is not as we write it reads as absent. */
static void parse_status(const cJSON *s, op_status *st)
{
    if (!cJSON_IsObject(s)) return;
    st->phase = phase_parse(jstr(s, "phase"));
    const char *v = jstr(s, "instanceID");
    if (v && strlen(v) < sizeof st->instance_id) set_str(st->instance_id, OP_ID_LEN, v);
    v = jstr(s, "zone");
    if (v && strlen(v) < sizeof st->zone) set_str(st->zone, OP_ZONE_LEN, v);
    const cJSON *ips = jget(s, "ipAddresses"), *x;
    cJSON_ArrayForEach(x, jarray(ips))
    {
        if (st->n_ips < OP_IPS_MAX && cJSON_IsString(x) && strlen(x->valuestring) < OP_IP_LEN)
            set_str(st->ips[st->n_ips++], OP_IP_LEN, x->valuestring);
    }
    int64_t n;
    if (jint(jget(s, "observedGeneration"), &n) && n >= 0) st->observed_generation = n;
    if (jint(jget(s, "failoverCount"), &n) && n >= 0 && n <= 1000000) st->failover_count = (int)n;
    const cJSON *b = jget(s, "backups");
    if (cJSON_IsObject(b)) {
        st->backups.present = true;
        st->backups.last_schedule_ms = jtime(b, "lastScheduleTime");
        st->backups.last_successful_ms = jtime(b, "lastSuccessfulTime");
        cJSON_ArrayForEach(x, jarray(jget(b, "snapshots")))
        {
            const char *id = jstr(x, "id");
            if (!id || strlen(id) >= OP_ID_LEN || st->backups.n >= OP_SNAPS_MAX) continue;
            op_snapshot_ref *r = &st->backups.snaps[st->backups.n++];
            set_str(r->id, OP_ID_LEN, id);
            r->created_ms = jtime(x, "createdAt");
        }
    }
    cJSON_ArrayForEach(x, jarray(jget(s, "conditions")))
    {
        const char *type = jstr(x, "type"), *status = jstr(x, "status");
        int t = -1;
        for (int i = 0; type && i < OP_COND_COUNT; i++)
            if (strcmp(type, cond_names[i]) == 0) t = i;
        if (t < 0 || !status) continue;
        op_condition *k = &st->cond[t];
        k->present = true;
        k->status = strcmp(status, "True") == 0    ? OP_CS_TRUE
                    : strcmp(status, "False") == 0 ? OP_CS_FALSE
                                                   : OP_CS_UNKNOWN;
        set_str(k->reason, sizeof k->reason, jstr(x, "reason"));
        set_str(k->message, sizeof k->message, jstr(x, "message"));
        k->last_transition_ms = jtime(x, "lastTransitionTime");
        if (jint(jget(x, "observedGeneration"), &n) && n >= 0) k->observed_generation = n;
    }
}

int op_object_parse(const cJSON *obj, op_object *out, char *err, size_t errsz)
{
    jerr e = {err, errsz};
    op_object *o = calloc(1, sizeof *o);
    if (!o) return jfail(&e, "out of memory");
    const cJSON *md = jget(obj, "metadata");
    int rc = -1;
    if (!cJSON_IsObject(md)) {
        jfail(&e, "metadata: missing or not an object");
        goto done;
    }
    if (req_str(&e, md, "name", "metadata.name", o->name, sizeof o->name, NULL) < 0 ||
        req_str(&e, md, "namespace", "metadata.namespace", o->ns, sizeof o->ns, "") < 0 ||
        req_str(&e, md, "uid", "metadata.uid", o->uid, sizeof o->uid, NULL) < 0)
        goto done;
    if (strlen(o->uid) + 24 >= OP_KEY_LEN) {
        jfail(&e, "metadata.uid: longer than %d characters", OP_KEY_LEN - 25);
        goto done;
    }
    int64_t gen = 0;
    if (req_int(&e, md, "generation", "metadata.generation", 0, INT64_MAX / 2, false, 0, &gen) < 0)
        goto done;
    o->generation = gen;
    o->creation_ms = jtime(md, "creationTimestamp");
    if (jget(md, "deletionTimestamp") && !cJSON_IsNull(jget(md, "deletionTimestamp"))) {
        o->deleting = true;
        o->deletion_ms = jtime(md, "deletionTimestamp");
    }
    const cJSON *x;
    cJSON_ArrayForEach(x, jarray(jget(md, "finalizers")))
    {
        if (cJSON_IsString(x) && strcmp(x->valuestring, OP_FINALIZER) == 0) o->has_finalizer = true;
    }
    const cJSON *ann = jget(md, "annotations");
    const char *paused = jstr(ann, OP_ANN_PAUSED);
    o->paused = paused && strcmp(paused, "true") == 0;
    if (jget(ann, OP_ANN_CREATE_PENDING)) {
        const char *mv = jstr(ann, OP_ANN_CREATE_PENDING);
        op_marker_parse(mv ? mv : "", o->uid, &o->marker);
    }
    if (parse_spec(&e, jget(obj, "spec"), &o->spec) < 0) goto done;
    parse_status(jget(obj, "status"), &o->status);
    *out = *o;
    rc = 0;
done:
    free(o);
    return rc;
}

static bool add(cJSON *parent, const char *k, cJSON *v)
{
    if (!v) return false;
    cJSON_AddItemToObject(parent, k, v);
    return true;
}

static bool add_time(cJSON *parent, const char *k, int64_t ms)
{
    char t[CSL_RFC3339_LEN];
    fmt_time(ms, t);
    return add(parent, k, cJSON_CreateString(t));
}

cJSON *op_status_to_json(const op_status *s)
{
    cJSON *j = cJSON_CreateObject();
    bool ok = j != NULL;
    if (!ok) return NULL;
    if (s->phase != OP_PHASE_NONE)
        ok &= add(j, "phase", cJSON_CreateString(op_phase_name(s->phase)));
    if (s->instance_id[0]) ok &= add(j, "instanceID", cJSON_CreateString(s->instance_id));
    if (s->zone[0]) ok &= add(j, "zone", cJSON_CreateString(s->zone));
    cJSON *ips = cJSON_CreateArray();
    ok &= add(j, "ipAddresses", ips);
    for (size_t i = 0; ok && i < s->n_ips; i++)
        ok &= cJSON_AddItemToArray(ips, cJSON_CreateString(s->ips[i]));
    if (s->observed_generation > 0)
        ok &= add(j, "observedGeneration", cJSON_CreateNumber((double)s->observed_generation));
    ok &= add(j, "failoverCount", cJSON_CreateNumber(s->failover_count));
    if (s->backups.present) {
        cJSON *b = cJSON_CreateObject();
        ok &= add(j, "backups", b);
        if (ok && s->backups.last_schedule_ms)
            ok &= add_time(b, "lastScheduleTime", s->backups.last_schedule_ms);
        if (ok && s->backups.last_successful_ms)
            ok &= add_time(b, "lastSuccessfulTime", s->backups.last_successful_ms);
        cJSON *arr = ok ? cJSON_CreateArray() : NULL;
        ok &= ok && add(b, "snapshots", arr);
        for (size_t i = 0; ok && i < s->backups.n; i++) {
            cJSON *r = cJSON_CreateObject();
            ok &= r && cJSON_AddItemToArray(arr, r);
            ok &= ok && add(r, "id", cJSON_CreateString(s->backups.snaps[i].id));
            if (ok && s->backups.snaps[i].created_ms)
                ok &= add_time(r, "createdAt", s->backups.snaps[i].created_ms);
        }
    }
    cJSON *conds = ok ? cJSON_CreateArray() : NULL;
    ok &= ok && add(j, "conditions", conds);
    for (int t = 0; ok && t < OP_COND_COUNT; t++) {
        const op_condition *k = &s->cond[t];
        if (!k->present) continue;
        cJSON *c = cJSON_CreateObject();
        ok &= c && cJSON_AddItemToArray(conds, c);
        ok &= ok && add(c, "type", cJSON_CreateString(cond_names[t]));
        ok &= ok && add(c, "status", cJSON_CreateString(cs_names[k->status]));
        ok &= ok && add(c, "reason", cJSON_CreateString(k->reason[0] ? k->reason : "Unknown"));
        ok &= ok && add(c, "message", cJSON_CreateString(k->message));
        ok &= ok && add_time(c, "lastTransitionTime", k->last_transition_ms);
        if (ok && k->observed_generation > 0)
            ok &= add(c, "observedGeneration", cJSON_CreateNumber((double)k->observed_generation));
    }
    if (!ok) {
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

int op_instance_parse(const cJSON *j, const char *uid, op_instance *out, char *err, size_t errsz)
{
    jerr e = {err, errsz};
    op_instance *i = calloc(1, sizeof *i);
    if (!i) return jfail(&e, "out of memory");
    int rc = -1;
    int64_t v;
    const char *state;
    if (!cJSON_IsObject(j)) {
        jfail(&e, "instance: not a JSON object");
        goto done;
    }
    if (req_str(&e, j, "id", "instance.id", i->id, sizeof i->id, NULL) < 0) goto done;
    state = jstr(j, "state");
    if (!state) {
        jfail(&e, "instance %s: state: missing or not a string", i->id);
        goto done;
    }
    {
        size_t k = 0;
        while (k < N_INST_STATES && strcmp(state, inst_state_names[k]) != 0) k++;
        if (k == N_INST_STATES) {
            jfail(&e, "instance %s: state: unknown state \"%.32s\"", i->id, state);
            goto done;
        }
        i->state = (op_inst_state)k;
    }
    if (req_int(&e, j, "cpu", "instance.cpu", 0, 1 << 20, false, 0, &v) < 0) goto done;
    i->cpu = (int)v;
    if (req_int(&e, j, "memoryMiB", "instance.memoryMiB", 0, INT64_MAX / 2, false, 0,
                &i->memory_mib) < 0 ||
        req_int(&e, j, "diskGiB", "instance.diskGiB", 0, INT64_MAX / 2, false, 0, &i->disk_gib) <
            0 ||
        req_str(&e, j, "zone", "instance.zone", i->zone, sizeof i->zone, "") < 0 ||
        req_str(&e, j, "image", "instance.image", i->image, sizeof i->image, "") < 0)
        goto done;
    const cJSON *ips = jget(j, "ipAddresses"), *x;
    if (ips && !cJSON_IsArray(ips)) {
        jfail(&e, "instance %s: ipAddresses: must be an array", i->id);
        goto done;
    }
    cJSON_ArrayForEach(x, ips)
    {
        if (!cJSON_IsString(x) || strlen(x->valuestring) >= OP_IP_LEN || i->n_ips >= OP_IPS_MAX) {
            jfail(&e, "instance %s: ipAddresses[%zu]: not an address", i->id, i->n_ips);
            goto done;
        }
        set_str(i->ips[i->n_ips++], OP_IP_LEN, x->valuestring);
    }
    const cJSON *tags = jget(j, "tags");
    const char *tu = jstr(tags, OP_TAG_UID), *ta = jstr(tags, OP_TAG_ATTEMPT);
    i->tagged = tu && uid && uid[0] && strcmp(tu, uid) == 0;
    if (ta) {
        char *end;
        long n = strtol(ta, &end, 10);
        if (end != ta && !*end && n >= 0 && n <= 1000000) i->attempt = (int)n;
    }
    i->created_ms = jtime(j, "createdAt");
    i->updated_ms = jtime(j, "updatedAt");
    *out = *i;
    rc = 0;
done:
    free(i);
    return rc;
}

int op_snapshot_parse(const cJSON *j, op_snapshot *out, char *err, size_t errsz)
{
    jerr e = {err, errsz};
    op_snapshot s;
    memset(&s, 0, sizeof s);
    if (!cJSON_IsObject(j)) return jfail(&e, "snapshot: not a JSON object");
    if (req_str(&e, j, "id", "snapshot.id", s.id, sizeof s.id, NULL) < 0) return -1;
    const char *state = jstr(j, "state");
    if (state && strcmp(state, "creating") == 0)
        s.state = OP_SNAP_CREATING;
    else if (state && strcmp(state, "available") == 0)
        s.state = OP_SNAP_AVAILABLE;
    else
        return jfail(&e, "snapshot %s: state: expected \"creating\" or \"available\"", s.id);
    s.created_ms = jtime(j, "createdAt");
    *out = s;
    return 0;
}

static cJSON *owner_tags(const op_object *o)
{
    cJSON *t = cJSON_CreateObject();
    char name[OP_NS_LEN + OP_NAME_LEN + 1];
    format(name, sizeof name, "%s/%s", o->ns, o->name);
    if (!t || !add(t, OP_TAG_UID, cJSON_CreateString(o->uid)) ||
        !add(t, OP_TAG_NAME, cJSON_CreateString(name))) {
        cJSON_Delete(t);
        return NULL;
    }
    return t;
}

cJSON *op_create_body(const op_object *o, const op_action *a)
{
    const op_spec *sp = &o->spec;
    cJSON *j = cJSON_CreateObject(), *tags = owner_tags(o);
    char attempt[16];
    format(attempt, sizeof attempt, "%d", a->attempt);
    bool ok = j && tags && add(j, "name", cJSON_CreateString(o->name)) &&
              add(j, "cpu", cJSON_CreateNumber(sp->cpu)) &&
              add(j, "memoryMiB", cJSON_CreateNumber((double)sp->memory_mib)) &&
              add(j, "diskGiB", cJSON_CreateNumber((double)sp->disk_gib)) &&
              add(j, "image", cJSON_CreateString(sp->image)) &&
              add(j, "zone", cJSON_CreateString(a->zone[0] ? a->zone : sp->zone)) &&
              add(j, "networkType", cJSON_CreateString(sp->network_type)) &&
              add(j, "ipCount", cJSON_CreateNumber(sp->ip_count)) &&
              add(tags, OP_TAG_ATTEMPT, cJSON_CreateString(attempt));
    if (ok) {
        cJSON_AddItemToObject(j, "tags", tags);
        return j;
    }
    cJSON_Delete(j);
    cJSON_Delete(tags);
    return NULL;
}

cJSON *op_resize_body(const op_action *a)
{
    cJSON *j = cJSON_CreateObject();
    bool ok = j != NULL;
    if (ok && a->cpu) ok = add(j, "cpu", cJSON_CreateNumber(a->cpu));
    if (ok && a->memory_mib) ok = add(j, "memoryMiB", cJSON_CreateNumber((double)a->memory_mib));
    if (ok && a->disk_gib) ok = add(j, "diskGiB", cJSON_CreateNumber((double)a->disk_gib));
    if (!ok) {
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

cJSON *op_snapshot_body(const op_object *o, const op_action *a)
{
    int64_t y;
    int mo, d;
    int64_t secs = a->at_ms / 1000;
    int64_t days = secs / 86400 - (secs % 86400 < 0);
    int64_t rem = secs - days * 86400;
    op_civil_from_days(days, &y, &mo, &d);
    char name[257];
    /* The cloud takes names of at most 256 characters: cut the object's
     * name, keep the time that makes it unique. */
    format(name, sizeof name, "%.*s-%04lld%02d%02d-%02d%02d", 256 - 14, o->name, (long long)y, mo,
           d, (int)(rem / 3600), (int)(rem % 3600 / 60));
    cJSON *j = cJSON_CreateObject(), *tags = owner_tags(o);
    if (j && tags && add(j, "name", cJSON_CreateString(name))) {
        cJSON_AddItemToObject(j, "tags", tags);
        return j;
    }
    cJSON_Delete(j);
    cJSON_Delete(tags);
    return NULL;
}

bool op_marker_settled(const op_object *o)
{
    const op_marker *m = &o->marker;
    return m->present && m->valid && o->status.instance_id[0] &&
           m->attempt <= o->status.failover_count;
}

void op_marker_format(const op_marker *m, char *out, size_t outsz)
{
    char t[CSL_RFC3339_LEN];
    fmt_time(m->at_ms, t);
    format(out, outsz, "%s %s %s", m->key, m->zone, t);
}

void op_marker_parse(const char *value, const char *uid, op_marker *out)
{
    memset(out, 0, sizeof *out);
    out->present = true;
    if (!value || !uid || !uid[0]) return;
    const char *sp1 = strchr(value, ' ');
    const char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (!sp1 || !sp2 || strchr(sp2 + 1, ' ')) return;
    size_t klen = (size_t)(sp1 - value), zlen = (size_t)(sp2 - sp1 - 1), ulen = strlen(uid);
    if (klen >= OP_KEY_LEN || zlen == 0 || zlen >= OP_ZONE_LEN) return;
    if (klen < ulen || strncmp(value, uid, ulen) != 0) return;
    int attempt = 0;
    if (klen > ulen) {
        static const char sfx[] = "-attempt-";
        const char *p = value + ulen;
        if (klen - ulen <= sizeof sfx - 1 || strncmp(p, sfx, sizeof sfx - 1) != 0) return;
        p += sizeof sfx - 1;
        if (*p == '0') return; /* no leading zeros: one attempt, one spelling */
        for (; p < sp1; p++) {
            if (*p < '0' || *p > '9' || attempt > 100000) return;
            attempt = attempt * 10 + (*p - '0');
        }
    }
    int64_t at;
    if (csl_rfc3339_parse(sp2 + 1, &at) < 0) return;
    memcpy(out->key, value, klen);
    out->key[klen] = '\0';
    memcpy(out->zone, sp1 + 1, zlen);
    out->zone[zlen] = '\0';
    out->attempt = attempt;
    out->at_ms = at;
    out->valid = true;
}

/* ================================================================ CloudServerSet */

static void set_cond(op_condition *k, const op_condition *was, op_cond_status s, const char *reason,
                     int64_t nows, int64_t gen, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));
static void set_cond(op_condition *k, const op_condition *was, op_cond_status s, const char *reason,
                     int64_t nows, int64_t gen, const char *fmt, ...)
{
    k->present = true;
    k->status = s;
    set_str(k->reason, sizeof k->reason, reason);
    va_list ap;
    va_start(ap, fmt);
    vformat(k->message, sizeof k->message, fmt, ap);
    va_end(ap);
    k->observed_generation = gen;
    k->last_transition_ms = was->present && was->status == s && was->last_transition_ms
                                ? was->last_transition_ms
                                : nows;
}

/* "<set>-<i>" → i; -1 for any other name (adopted or generated members). */
static long child_index(const char *set, const char *child)
{
    size_t n = strlen(set);
    if (strncmp(child, set, n) != 0 || child[n] != '-') return -1;
    const char *p = child + n + 1;
    if (!*p || (p[0] == '0' && p[1]) || strlen(p) > 6) return -1;
    long v = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9') return -1;
        v = v * 10 + (*p - '0');
    }
    return v;
}

typedef struct set_ctx {
    const op_set_input *in;
    op_set_plan *p;
    size_t batch; /* child writes planned */
    bool cut;     /* the batch limit stopped some */
} set_ctx;

static op_set_action *set_act(set_ctx *c, op_set_action_kind k, const char *child)
{
    bool child_write =
        k == OP_SET_CREATE_CHILD || k == OP_SET_UPDATE_CHILD || k == OP_SET_DELETE_CHILD;
    if (child_write && c->batch >= OP_SET_BATCH_MAX) {
        c->cut = true;
        return NULL;
    }
    if (c->p->n >= OP_SET_ACTIONS_MAX) {
        c->cut = true;
        return NULL;
    }
    op_set_action *a = &c->p->actions[c->p->n++];
    memset(a, 0, sizeof *a);
    a->kind = k;
    set_str(a->child, sizeof a->child, child);
    if (child_write) c->batch++;
    return a;
}

static void set_event(set_ctx *c, op_event_type t, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void set_event(set_ctx *c, op_event_type t, const char *reason, const char *fmt, ...)
{
    if (c->p->n >= OP_SET_ACTIONS_MAX) return;
    op_set_action *a = &c->p->actions[c->p->n++];
    memset(a, 0, sizeof *a);
    a->kind = OP_SET_EVENT;
    a->ev_type = t;
    set_str(a->reason, sizeof a->reason, reason);
    va_list ap;
    va_start(ap, fmt);
    vformat(a->message, sizeof a->message, fmt, ap);
    va_end(ap);
}

/* A member and its index ("<set>-<i>"; -1 for other names). */
typedef struct member {
    const op_set_child *c;
    long idx;
} member;

/* Scale-down order: not-Ready first, then the newest, then the highest
 * index, then the name (so the order is total). */
static int victim_cmp(const void *a, const void *b)
{
    const member *x = a, *y = b;
    if (x->c->ready != y->c->ready) return x->c->ready ? 1 : -1;
    if (x->c->created_ms != y->c->created_ms) return x->c->created_ms > y->c->created_ms ? -1 : 1;
    if (x->idx != y->idx) return x->idx > y->idx ? -1 : 1;
    return -strcmp(x->c->name, y->c->name);
}

/* Appends up to `room` names to a summary like "web-3, web-4, …". */
static void name_list(char *out, size_t n, const char *const *names, size_t count)
{
    out[0] = '\0';
    size_t len = 0;
    for (size_t i = 0; i < count; i++) {
        int w = snprintf(out + len, n - len, "%s%s", i ? ", " : "", names[i]);
        if (w < 0 || (size_t)w >= n - len || i == 8) {
            format(out + len, n - len, "%s… (%zu in all)", i ? ", " : "", count);
            return;
        }
        len += (size_t)w;
    }
}

void op_set_decide(const op_set_input *in, op_set_plan *out)
{
    static const op_set_status none;
    memset(out, 0, sizeof *out);
    const op_set_status *prev = in->status ? in->status : &none;
    out->status = *prev;
    set_ctx c = {in, out, 0, false};
    int64_t nows = in->now_ms - ((in->now_ms % 1000) + 1000) % 1000;
    const char *set = in->name ? in->name : "";

    size_t n = in->n_children;
    member *active = calloc(n ? n : 1, sizeof *active);
    const char **names = calloc(OP_SET_BATCH_MAX + 1, sizeof *names);
    char(*made)[OP_NAME_LEN] = calloc(OP_SET_BATCH_MAX, OP_NAME_LEN);
    if (!active || !names || !made) {
        out->requeue_ms = 1000; /* out of memory: change nothing, try again */
        goto done;
    }
    size_t na = 0;
    int ready = 0;
    for (size_t i = 0; i < n; i++) {
        if (in->children[i].deleting) continue;
        active[na].c = &in->children[i];
        active[na++].idx = child_index(set, in->children[i].name);
        if (in->children[i].ready) ready++;
    }

    if (in->deleting) {
        if (!in->has_finalizer) goto done;
        size_t k = 0;
        for (size_t i = 0; i < na; i++)
            if (set_act(&c, OP_SET_DELETE_CHILD, active[i].c->name)) names[k++] = active[i].c->name;
        if (k) {
            char list[OP_MSG_LEN];
            name_list(list, sizeof list, names, k);
            set_event(&c, OP_EV_NORMAL, "DeletingMembers", "the set is being deleted: deleting %s",
                      list);
        }
        if (n == 0)
            set_act(&c, OP_SET_REMOVE_FINALIZER, "");
        else
            out->requeue_ms = c.cut ? 1 : 0;
        goto done; /* no status for a set on its way out */
    }

    if (!in->has_finalizer) set_act(&c, OP_SET_ADD_FINALIZER, "");
    int want = in->replicas < 0 ? 0 : in->replicas;
    bool name_problem = false;
    size_t creating = 0, deleting = 0;

    if ((int)na < want) {
        size_t need = (size_t)want - na;
        long next = 0;
        while (creating < need && !c.cut) {
            /* the lowest index no member (deleting ones included) holds */
            bool used = true;
            while (used) {
                used = false;
                for (size_t i = 0; i < n && !used; i++)
                    if (child_index(set, in->children[i].name) == next) used = true;
                if (used) next++;
            }
            char name[OP_NAME_LEN + 16];
            format(name, sizeof name, "%s-%ld", set, next);
            if (strlen(name) > 253) {
                name_problem = true;
                break;
            }
            if (!set_act(&c, OP_SET_CREATE_CHILD, name)) break;
            set_str(made[creating], OP_NAME_LEN, name);
            names[creating] = made[creating];
            creating++;
            next++;
        }
        if (creating) {
            char list[OP_MSG_LEN];
            name_list(list, sizeof list, names, creating);
            set_event(&c, OP_EV_NORMAL, "ScalingUp", "scaling from %zu to %d members: creating %s",
                      na, want, list);
        }
    } else if ((int)na > want) {
        size_t extra = na - (size_t)want;
        qsort(active, na, sizeof active[0], victim_cmp);
        for (size_t i = 0; i < extra; i++) {
            if (!set_act(&c, OP_SET_DELETE_CHILD, active[i].c->name)) break;
            names[deleting++] = active[i].c->name;
        }
        if (deleting) {
            char list[OP_MSG_LEN];
            name_list(list, sizeof list, names, deleting);
            set_event(&c, OP_EV_NORMAL, "ScalingDown",
                      "scaling from %zu to %d members: deleting %s (not Ready first, then the "
                      "newest)",
                      na, want, list);
        }
    }

    size_t updating = 0;
    for (size_t i = deleting; i < na; i++) {
        if (active[i].c->spec_matches) continue;
        if (!set_act(&c, OP_SET_UPDATE_CHILD, active[i].c->name)) break;
        names[updating++] = active[i].c->name;
    }
    if (updating) {
        char list[OP_MSG_LEN];
        name_list(list, sizeof list, names, updating);
        set_event(&c, OP_EV_NORMAL, "UpdatingMembers", "applying the template to %s", list);
    }
    if (c.cut) out->requeue_ms = 1;

    op_set_status *st = &out->status;
    st->replicas = (int)na;
    st->ready_replicas = ready;
    set_str(st->selector, sizeof st->selector, in->selector);
    st->observed_generation = in->generation;
    const op_condition *pc = prev->cond;
    if ((int)na == want && ready == want)
        set_cond(&st->cond[OP_SET_COND_READY], &pc[OP_SET_COND_READY], OP_CS_TRUE,
                 "AllMembersReady", nows, in->generation, "%d of %d members are Ready", ready,
                 want);
    else
        set_cond(&st->cond[OP_SET_COND_READY], &pc[OP_SET_COND_READY], OP_CS_FALSE,
                 (int)na < want   ? "ScalingUp"
                 : (int)na > want ? "ScalingDown"
                                  : "MembersNotReady",
                 nows, in->generation, "%d of %d members exist, %d are Ready", (int)na, want,
                 ready);
    if (name_problem) {
        set_cond(&st->cond[OP_SET_COND_SYNCED], &pc[OP_SET_COND_SYNCED], OP_CS_FALSE, "NameTooLong",
                 nows, in->generation,
                 "member names \"%.64s…-<index>\" would exceed 253 characters; use a shorter set "
                 "name",
                 set);
        if (!(pc[OP_SET_COND_SYNCED].present &&
              strcmp(pc[OP_SET_COND_SYNCED].reason, "NameTooLong") == 0))
            set_event(&c, OP_EV_WARNING, "NameTooLong", "%s", st->cond[OP_SET_COND_SYNCED].message);
    } else if (in->error && in->error[0]) {
        set_cond(&st->cond[OP_SET_COND_SYNCED], &pc[OP_SET_COND_SYNCED], OP_CS_FALSE,
                 "MemberWriteFailed", nows, in->generation, "%s", in->error);
    } else {
        set_cond(&st->cond[OP_SET_COND_SYNCED], &pc[OP_SET_COND_SYNCED], OP_CS_TRUE,
                 "ReconcileSucceeded", nows, in->generation, "%s", "");
    }
    out->write_status = op_set_status_differs(st, prev);
done:
    free(active);
    free(names);
    free(made);
}

bool op_set_status_differs(const op_set_status *a, const op_set_status *b)
{
    if (a->replicas != b->replicas || a->ready_replicas != b->ready_replicas ||
        strcmp(a->selector, b->selector) != 0 || a->observed_generation != b->observed_generation)
        return true;
    for (int t = 0; t < OP_SET_COND_COUNT; t++)
        if (cond_differs(&a->cond[t], &b->cond[t])) return true;
    return false;
}

static const char *const set_cond_names[OP_SET_COND_COUNT] = {"Ready", "Synced"};

cJSON *op_set_status_to_json(const op_set_status *s)
{
    cJSON *j = cJSON_CreateObject(), *conds = cJSON_CreateArray();
    bool ok = j && conds && add(j, "replicas", cJSON_CreateNumber(s->replicas)) &&
              add(j, "readyReplicas", cJSON_CreateNumber(s->ready_replicas)) &&
              add(j, "selector", cJSON_CreateString(s->selector)) &&
              (s->observed_generation <= 0 ||
               add(j, "observedGeneration", cJSON_CreateNumber((double)s->observed_generation)));
    if (ok) {
        cJSON_AddItemToObject(j, "conditions", conds);
        conds = NULL;
    }
    for (int t = 0; ok && t < OP_SET_COND_COUNT; t++) {
        const op_condition *k = &s->cond[t];
        if (!k->present) continue;
        cJSON *c = cJSON_CreateObject();
        ok = c && cJSON_AddItemToArray(cJSON_GetObjectItem(j, "conditions"), c) &&
             add(c, "type", cJSON_CreateString(set_cond_names[t])) &&
             add(c, "status", cJSON_CreateString(cs_names[k->status])) &&
             add(c, "reason", cJSON_CreateString(k->reason[0] ? k->reason : "Unknown")) &&
             add(c, "message", cJSON_CreateString(k->message)) &&
             add_time(c, "lastTransitionTime", k->last_transition_ms) &&
             (k->observed_generation <= 0 ||
              add(c, "observedGeneration", cJSON_CreateNumber((double)k->observed_generation)));
    }
    cJSON_Delete(conds);
    if (!ok) {
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

void op_set_status_parse(const cJSON *s, op_set_status *out)
{
    memset(out, 0, sizeof *out);
    if (!cJSON_IsObject(s)) return;
    int64_t n;
    if (jint(jget(s, "replicas"), &n) && n >= 0 && n <= 1000000) out->replicas = (int)n;
    if (jint(jget(s, "readyReplicas"), &n) && n >= 0 && n <= 1000000) out->ready_replicas = (int)n;
    const char *sel = jstr(s, "selector");
    if (sel && strlen(sel) < sizeof out->selector)
        set_str(out->selector, sizeof out->selector, sel);
    if (jint(jget(s, "observedGeneration"), &n) && n >= 0) out->observed_generation = n;
    const cJSON *x;
    cJSON_ArrayForEach(x, jarray(jget(s, "conditions")))
    {
        const char *type = jstr(x, "type"), *status = jstr(x, "status");
        int t = -1;
        for (int i = 0; type && i < OP_SET_COND_COUNT; i++)
            if (strcmp(type, set_cond_names[i]) == 0) t = i;
        if (t < 0 || !status) continue;
        op_condition *k = &out->cond[t];
        k->present = true;
        k->status = strcmp(status, "True") == 0    ? OP_CS_TRUE
                    : strcmp(status, "False") == 0 ? OP_CS_FALSE
                                                   : OP_CS_UNKNOWN;
        set_str(k->reason, sizeof k->reason, jstr(x, "reason"));
        set_str(k->message, sizeof k->message, jstr(x, "message"));
        k->last_transition_ms = jtime(x, "lastTransitionTime");
        if (jint(jget(x, "observedGeneration"), &n) && n >= 0) k->observed_generation = n;
    }
}

/* ------------------------------------------------------------ selectors */

typedef struct requirement {
    const char *key;
    int op;              /* 0 =, 1 in, 2 notin, 3 exists, 4 !exists */
    const char *value;   /* op 0 */
    const cJSON *values; /* ops 1, 2 */
    size_t order;
} requirement;

static int req_cmp(const void *a, const void *b)
{
    const requirement *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    if (c) return c;
    return x->order < y->order ? -1 : x->order > y->order;
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int op_selector_string(const cJSON *sel, char *out, size_t outsz, char *err, size_t errsz)
{
    jerr e = {err, errsz};
    if (!cJSON_IsObject(sel)) return jfail(&e, "spec.selector: missing or not an object");
    const cJSON *ml = jget(sel, "matchLabels"), *me = jget(sel, "matchExpressions"), *x;
    if (ml && !cJSON_IsObject(ml)) return jfail(&e, "spec.selector.matchLabels: must be an object");
    if (me && !cJSON_IsArray(me))
        return jfail(&e, "spec.selector.matchExpressions: must be an array");
    size_t n = (size_t)cJSON_GetArraySize(ml) + (size_t)cJSON_GetArraySize(me);
    requirement *r = calloc(n ? n : 1, sizeof *r);
    const char **vals = NULL;
    if (!r) return jfail(&e, "out of memory");
    int rc = -1;
    size_t k = 0;
    cJSON_ArrayForEach(x, ml)
    {
        if (!cJSON_IsString(x)) {
            jfail(&e, "spec.selector.matchLabels.%s: must be a string", x->string);
            goto done;
        }
        r[k] = (requirement){x->string, 0, x->valuestring, NULL, k};
        k++;
    }
    size_t i = 0;
    cJSON_ArrayForEach(x, me)
    {
        const char *key = jstr(x, "key"), *op = jstr(x, "operator");
        const cJSON *v = jget(x, "values");
        static const char *const ops[] = {"In", "NotIn", "Exists", "DoesNotExist"};
        int o = -1;
        for (int j = 0; op && j < 4; j++)
            if (strcmp(op, ops[j]) == 0) o = j + 1;
        if (!key || !key[0]) {
            jfail(&e, "spec.selector.matchExpressions[%zu].key: missing", i);
            goto done;
        }
        if (o < 0) {
            jfail(&e,
                  "spec.selector.matchExpressions[%zu].operator: must be In, NotIn, Exists or "
                  "DoesNotExist",
                  i);
            goto done;
        }
        bool has_vals = cJSON_IsArray(v) && cJSON_GetArraySize(v) > 0;
        if ((o <= 2) != has_vals) {
            jfail(&e, "spec.selector.matchExpressions[%zu].values: %s", i,
                  o <= 2 ? "must be non-empty for In and NotIn"
                         : "must be empty for Exists and DoesNotExist");
            goto done;
        }
        const cJSON *s;
        cJSON_ArrayForEach(s, (o <= 2 ? v : NULL))
        {
            if (!cJSON_IsString(s)) {
                jfail(&e, "spec.selector.matchExpressions[%zu].values: must be strings", i);
                goto done;
            }
        }
        r[k] = (requirement){key, o, NULL, o <= 2 ? v : NULL, k};
        k++;
        i++;
    }
    qsort(r, k, sizeof *r, req_cmp);
    csl_buf b = CSL_BUF_INIT;
    for (size_t j = 0; j < k; j++) {
        if (j) csl_buf_putc(&b, ',');
        switch (r[j].op) {
        case 0:
            csl_buf_printf(&b, "%s=%s", r[j].key, r[j].value);
            break;
        case 3:
            csl_buf_puts(&b, r[j].key);
            break;
        case 4:
            csl_buf_printf(&b, "!%s", r[j].key);
            break;
        default: {
            size_t nv = (size_t)cJSON_GetArraySize(r[j].values), m = 0;
            free(vals);
            vals = calloc(nv, sizeof *vals);
            if (!vals) {
                b.oom = true;
                break;
            }
            const cJSON *s;
            cJSON_ArrayForEach(s, r[j].values) vals[m++] = s->valuestring;
            qsort(vals, nv, sizeof *vals, str_cmp);
            csl_buf_printf(&b, "%s %s (", r[j].key, r[j].op == 1 ? "in" : "notin");
            for (m = 0; m < nv; m++) csl_buf_printf(&b, "%s%s", m ? "," : "", vals[m]);
            csl_buf_putc(&b, ')');
        }
        }
    }
    if (b.oom)
        jfail(&e, "out of memory");
    else if (b.len >= outsz)
        jfail(&e, "spec.selector: its string form is longer than %zu characters", outsz - 1);
    else {
        memcpy(out, csl_buf_str(&b), b.len + 1);
        rc = 0;
    }
    csl_buf_free(&b);
done:
    free(vals);
    free(r);
    return rc;
}
