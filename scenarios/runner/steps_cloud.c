/* steps_cloud.c — the operations on mockcloud: fault (rules, outages,
 * tokens), crash, and the cloud/journal forms of assert and error.
 *
 * One idea: every fault is an interval on the scenario's timeline. The
 * context keeps the faults that are open; clearing one (by name, all, or
 * by its own duration running out — a small timer thread waits for that)
 * tells the monitor, which measures recovery from that moment. mockcloud
 * runs in real time, so durations written in scenario time are divided by
 * the time scale before they are sent. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "csl/clock.h"
#include "csl/rng.h"
#include "csl/units.h"
#include "match.h"
#include "steps.h"

#define RENDER_MAX 400

/* ---------------------------------------------------------------- open faults */

static void fault_free(struct sr_open_fault *f)
{
    free(f->kind);
    free(f->what);
    free(f->id);
}

static void *timer_main(void *arg)
{
    sr_ctx *c = arg;
    pthread_mutex_lock(&c->mu);
    while (!c->timer_stop) {
        int64_t now = csl_mono_ns(), next = 0;
        for (size_t i = 0; i < c->n_faults;) {
            struct sr_open_fault *f = &c->faults[i];
            if (f->due_ns && f->due_ns <= now) {
                if (c->mon) sr_monitor_fault(c->mon, f->kind, f->what, true);
                fault_free(f);
                c->faults[i] = c->faults[--c->n_faults];
                continue;
            }
            if (f->due_ns && (!next || f->due_ns < next)) next = f->due_ns;
            i++;
        }
        if (!next) next = now + 3600 * 1000000000LL;
        struct timespec ts = {next / 1000000000, next % 1000000000};
        pthread_cond_timedwait(&c->timer_cv, &c->mu, &ts);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

void sr_ctx_faults_end(sr_ctx *c)
{
    pthread_mutex_lock(&c->mu);
    bool running = c->timer_running;
    c->timer_stop = true;
    pthread_cond_broadcast(&c->timer_cv);
    pthread_mutex_unlock(&c->mu);
    if (running) pthread_join(c->timer, NULL);
    c->timer_running = false;
}

/* Opens a fault on the timeline; due_ns > 0: it ends by itself then. */
static void fault_open(sr_ctx *c, const char *kind, const char *what, const char *id, int64_t due_ns)
{
    if (c->mon) sr_monitor_fault(c->mon, kind, what, false);
    pthread_mutex_lock(&c->mu);
    if (c->n_faults == c->cap_faults) {
        size_t cap = c->cap_faults ? c->cap_faults * 2 : 8;
        struct sr_open_fault *v = realloc(c->faults, cap * sizeof *v);
        if (!v) goto out;
        c->faults = v;
        c->cap_faults = cap;
    }
    struct sr_open_fault *f = &c->faults[c->n_faults++];
    f->kind = strdup(kind);
    f->what = strdup(what);
    f->id = id ? strdup(id) : NULL;
    f->due_ns = due_ns;
    if (due_ns && !c->timer_running && !c->timer_stop &&
        pthread_create(&c->timer, NULL, timer_main, c) == 0)
        c->timer_running = true;
    pthread_cond_broadcast(&c->timer_cv);
out:
    pthread_mutex_unlock(&c->mu);
}

/* Closes open faults: the one with id (NULL: all; kind given: only that
 * kind). Returns how many. */
static int fault_close(sr_ctx *c, const char *id, const char *kind)
{
    int n = 0;
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < c->n_faults;) {
        struct sr_open_fault *f = &c->faults[i];
        bool hit = (!id || (f->id && !strcmp(f->id, id))) && (!kind || !strcmp(f->kind, kind));
        if (!hit) {
            i++;
            continue;
        }
        if (c->mon) sr_monitor_fault(c->mon, f->kind, f->what, true);
        fault_free(f);
        c->faults[i] = c->faults[--c->n_faults];
        n++;
    }
    pthread_mutex_unlock(&c->mu);
    return n;
}

/* A duration string in scenario time, rewritten for mockcloud's real
 * clock. */
static void rescale_duration(sr_ctx *c, cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    int64_t ns;
    char err[CSL_UNITS_ERR_LEN], buf[64];
    if (c->time_scale <= 1 || !cJSON_IsString(v) || csl_duration_parse(v->valuestring, &ns, err))
        return;
    csl_duration_format(sr_ctx_real_ns(c, ns), buf, sizeof buf);
    cJSON_ReplaceItemInObjectCaseSensitive(obj, key, cJSON_CreateString(buf));
}

/* "503 on POST /v1/instances" from a rule. */
static void describe_rule(const cJSON *rule, char *out, size_t sz)
{
    const cJSON *eff = cJSON_GetObjectItemCaseSensitive(rule, "effect");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(eff, "type");
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(eff, "status");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(rule, "match");
    const cJSON *meth = cJSON_GetObjectItemCaseSensitive(m, "method");
    const cJSON *path = cJSON_GetObjectItemCaseSensitive(m, "path");
    const cJSON *opn = cJSON_GetObjectItemCaseSensitive(m, "op");
    char eb[64];
    if (cJSON_IsNumber(status))
        snprintf(eb, sizeof eb, "%d", (int)status->valuedouble);
    else
        snprintf(eb, sizeof eb, "%s", cJSON_IsString(type) ? type->valuestring : "fault");
    snprintf(out, sz, "%s on %s%s%s", eb, cJSON_IsString(meth) ? meth->valuestring : "",
             cJSON_IsString(meth) ? " " : "",
             cJSON_IsString(path) ? path->valuestring
             : cJSON_IsString(opn) ? opn->valuestring
                                   : "every request");
}

/* ---------------------------------------------------------------- fault */

static int mock(sr_ctx *c, const sr_op *op, const char *method, const char *path,
                const cJSON *body, cJSON **reply, sr_outcome *out)
{
    char err[512] = "";
    if (!c->stack) {
        sr_outcome_fail(out, c, op, SR_ERROR, "no mockcloud in this run");
        return -1;
    }
    int st = sr_mock_request(c->stack, method, path, body, reply, err, sizeof err);
    if (st < 0) sr_outcome_fail(out, c, op, SR_ERROR, "%s %s: %s", method, path, err);
    return st;
}

/* The error mockcloud answered, for a message. */
static void mock_error(const cJSON *reply, char *out, size_t sz)
{
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(reply, "error");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "message");
    snprintf(out, sz, "%s", cJSON_IsString(m) ? m->valuestring : "(no message)");
}

void sr_op_fault(sr_ctx *c, const sr_op *op, int64_t deadline_ns, sr_outcome *out)
{
    (void)deadline_ns;
    cJSON *spec = sr_steps_expand(c, op, op->spec, NULL, out);
    if (!spec) return;
    const cJSON *add = cJSON_GetObjectItemCaseSensitive(spec, "add");
    const cJSON *as = cJSON_GetObjectItemCaseSensitive(spec, "as");
    const cJSON *clear = cJSON_GetObjectItemCaseSensitive(spec, "clear");
    const cJSON *outage = cJSON_GetObjectItemCaseSensitive(spec, "outage");
    const cJSON *tokens = cJSON_GetObjectItemCaseSensitive(spec, "tokens");
    const cJSON *capacity = cJSON_GetObjectItemCaseSensitive(spec, "capacity");
    cJSON *reply = NULL;
    char em[400], what[300];
    if (add) {
        cJSON *rule = cJSON_Duplicate(add, true);
        if (cJSON_IsString(as) && !cJSON_GetObjectItemCaseSensitive(rule, "id"))
            cJSON_AddStringToObject(rule, "id", as->valuestring);
        rescale_duration(c, rule, "duration");
        rescale_duration(c, rule, "startAfter");
        int st = mock(c, op, "POST", "/_mock/faults", rule, &reply, out);
        if (st >= 0 && st != 201) {
            mock_error(reply, em, sizeof em);
            sr_outcome_fail(out, c, op, SR_ERROR, "mockcloud refused the rule (%d): %s", st, em);
        } else if (st == 201) {
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(reply, "id");
            char d[200];
            describe_rule(rule, d, sizeof d);
            snprintf(what, sizeof what, "%s (%s)", d, cJSON_IsString(id) ? id->valuestring : "?");
            int64_t dur = sr_steps_duration(rule, "duration", 0);
            int64_t after = sr_steps_duration(rule, "startAfter", 0);
            fault_open(c, "fault", what, cJSON_IsString(id) ? id->valuestring : NULL,
                       dur ? csl_mono_ns() + after + dur : 0);
        }
        cJSON_Delete(rule);
    } else if (outage) {
        cJSON *body = cJSON_Duplicate(outage, true);
        const cJSON *mode = cJSON_GetObjectItemCaseSensitive(body, "mode");
        if (cJSON_IsNumber(mode)) cJSON_ReplaceItemInObjectCaseSensitive(body, "mode", cJSON_CreateString("503"));
        else if (!mode) cJSON_AddStringToObject(body, "mode", "503");
        rescale_duration(c, body, "duration");
        int st = mock(c, op, "POST", "/_mock/outage", body, &reply, out);
        if (st >= 0 && st != 201) {
            mock_error(reply, em, sizeof em);
            sr_outcome_fail(out, c, op, SR_ERROR, "mockcloud refused the outage (%d): %s", st, em);
        } else if (st == 201) {
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(reply, "id");
            const cJSON *m = cJSON_GetObjectItemCaseSensitive(body, "mode");
            const cJSON *p = cJSON_GetObjectItemCaseSensitive(body, "path");
            snprintf(what, sizeof what, "outage %s on %s (%s)", cJSON_IsString(m) ? m->valuestring : "503",
                     cJSON_IsString(p) ? p->valuestring : "/v1/**",
                     cJSON_IsString(id) ? id->valuestring : "?");
            int64_t dur = sr_steps_duration(body, "duration", 0);
            fault_open(c, "outage", what, cJSON_IsString(id) ? id->valuestring : NULL,
                       dur ? csl_mono_ns() + dur : 0);
        }
        cJSON_Delete(body);
    } else if (cJSON_IsString(clear)) {
        bool all = !strcmp(clear->valuestring, "all");
        char path[200];
        snprintf(path, sizeof path, "/_mock/faults%s%s", all ? "" : "/", all ? "" : clear->valuestring);
        int st = mock(c, op, "DELETE", path, NULL, &reply, out);
        if (st == 404 && !all) {
            /* Already gone (count used up or expired and deleted): clearing
             * is still what was wanted. */
            fault_close(c, clear->valuestring, NULL);
        } else if (st >= 0 && st != 204 && st != 200) {
            mock_error(reply, em, sizeof em);
            sr_outcome_fail(out, c, op, SR_ERROR, "clearing %s (%d): %s", clear->valuestring, st, em);
        } else if (st >= 0) {
            /* "all" deletes every rule, outages included (a revoked token
             * is not a rule: it stays open until a token is added). */
            if (all) {
                fault_close(c, NULL, "fault");
                fault_close(c, NULL, "outage");
            } else {
                fault_close(c, clear->valuestring, NULL);
            }
        }
    } else if (capacity) {
        /* Limits stay until a later capacity step changes them: the window
         * on the timeline runs from a step that sets a limit to the next
         * capacity step (which opens a new one if it still sets any). */
        cJSON *body = cJSON_CreateObject();
        cJSON_AddItemToObject(body, "zones", cJSON_Duplicate(capacity, true));
        int st = mock(c, op, "PUT", "/_mock/capacity", body, &reply, out);
        cJSON_Delete(body);
        if (st >= 0 && st != 200) {
            mock_error(reply, em, sizeof em);
            sr_outcome_fail(out, c, op, SR_ERROR, "mockcloud refused the capacity (%d): %s", st,
                            em);
        } else if (st == 200) {
            size_t k = (size_t)snprintf(what, sizeof what, "capacity");
            bool limited = false;
            for (const cJSON *z = capacity->child; z && k < sizeof what; z = z->next) {
                if (cJSON_IsNull(z)) continue;
                char v[32];
                if (cJSON_IsNumber(z))
                    snprintf(v, sizeof v, "%.0f", z->valuedouble);
                else
                    snprintf(v, sizeof v, "%s", cJSON_IsString(z) ? z->valuestring : "?");
                k += (size_t)snprintf(what + k, sizeof what - k, "%s %s=%s", limited ? "," : "",
                                      z->string, v);
                limited = true;
            }
            fault_close(c, NULL, "capacity");
            if (limited) fault_open(c, "capacity", what, NULL, 0);
        }
    } else if (tokens) {
        const cJSON *tok = cJSON_GetObjectItemCaseSensitive(tokens, "token");
        bool revoke = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(tokens, "revoke"));
        const char *t = cJSON_IsString(tok) ? tok->valuestring : "";
        int st;
        if (revoke) {
            char path[400];
            snprintf(path, sizeof path, "/_mock/tokens/%s", t);
            st = mock(c, op, "DELETE", path, NULL, &reply, out);
        } else {
            st = mock(c, op, "POST", "/_mock/tokens", tokens, &reply, out);
        }
        if (st >= 300) {
            mock_error(reply, em, sizeof em);
            sr_outcome_fail(out, c, op, SR_ERROR, "tokens (%d): %s", st, em);
        } else if (st >= 0) {
            if (revoke) {
                snprintf(what, sizeof what, "token revoked");
                fault_open(c, "tokens", what, NULL, 0);
            } else if (!fault_close(c, NULL, "tokens") && c->mon) {
                snprintf(what, sizeof what, "token added");
                sr_monitor_fault(c->mon, "tokens", what, true);
            }
        }
    }
    cJSON_Delete(reply);
    cJSON_Delete(spec);
}

/* ---------------------------------------------------------------- crash */

static const cJSON *instance_id(const cJSON *cs)
{
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(cs, "status");
    return cJSON_GetObjectItemCaseSensitive(st, "instanceID");
}

void sr_op_crash(sr_ctx *c, const sr_op *op, int64_t deadline_ns, sr_outcome *out)
{
    (void)deadline_ns;
    cJSON *spec = sr_steps_expand(c, op, op->spec, NULL, out);
    if (!spec) return;
    cJSON *body = cJSON_CreateObject();
    cJSON *reply = NULL, *list = NULL;
    const cJSON *ids = cJSON_GetObjectItemCaseSensitive(spec, "ids");
    const cJSON *zone = cJSON_GetObjectItemCaseSensitive(spec, "zone");
    const cJSON *cnt = cJSON_GetObjectItemCaseSensitive(spec, "count");
    const cJSON *frac = cJSON_GetObjectItemCaseSensitive(spec, "fraction");
    bool selects = false;
    static const char *const forms[] = {"name", "names", "selector", "all", NULL};
    for (size_t i = 0; forms[i]; i++)
        if (cJSON_GetObjectItemCaseSensitive(spec, forms[i])) selects = true;
    if (ids) {
        cJSON_AddItemToObject(body, "ids", cJSON_Duplicate(ids, true));
    } else if (!selects) {
        /* mockcloud picks from its seeded RNG. */
        if (zone) cJSON_AddItemToObject(body, "zone", cJSON_Duplicate(zone, true));
        if (cnt) cJSON_AddItemToObject(body, "count", cJSON_Duplicate(cnt, true));
        if (frac) cJSON_AddItemToObject(body, "fraction", cJSON_Duplicate(frac, true));
        if (!zone && !cnt && !frac) cJSON_AddNumberToObject(body, "fraction", 1);
    } else {
        /* The selected CloudServers' instances; count/fraction pick among
         * them from the run's seed, so a rerun crashes the same ones. */
        const cJSON *ns = cJSON_GetObjectItemCaseSensitive(spec, "namespace");
        const cJSON *sel = cJSON_GetObjectItemCaseSensitive(spec, "selector");
        const cJSON *where = cJSON_GetObjectItemCaseSensitive(spec, "where");
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(spec, "name");
        const cJSON *names = cJSON_GetObjectItemCaseSensitive(spec, "names");
        csl_buf ls = CSL_BUF_INIT;
        const cJSON *it;
        cJSON_ArrayForEach(it, sel) if (cJSON_IsString(it))
            csl_buf_printf(&ls, "%s%s=%s", ls.len ? "," : "", it->string, it->valuestring);
        sr_kres kr;
        sr_kind_resource("CloudServer", NULL, &kr);
        csl_kube_list_opts lo = {.label_selector = ls.len ? csl_buf_str(&ls) : NULL};
        csl_kube_error ke;
        list = c->kube ? csl_kube_list_all(c->kube, &kr.res,
                                           cJSON_IsString(ns) ? ns->valuestring : c->ns, &lo, &ke)
                       : NULL;
        csl_buf_free(&ls);
        if (!list) {
            sr_outcome_fail(out, c, op, SR_ERROR, "listing CloudServers: %s",
                            c->kube ? ke.message : "no cluster");
            goto done;
        }
        cJSON *cand = cJSON_CreateArray();
        cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(list, "items"))
        {
            const char *n = csl_kube_obj_name(it);
            bool keep = true;
            if (cJSON_IsString(name)) keep = n && !strcmp(n, name->valuestring);
            if (cJSON_IsArray(names)) {
                keep = false;
                const cJSON *x;
                cJSON_ArrayForEach(x, names) if (cJSON_IsString(x) && n && !strcmp(n, x->valuestring))
                    keep = true;
            }
            if (keep && where) keep = sr_match(where, it, NULL);
            const cJSON *iid = instance_id(it);
            if (keep && cJSON_IsString(iid) && *iid->valuestring)
                cJSON_AddItemToArray(cand, cJSON_CreateString(iid->valuestring));
        }
        int n = cJSON_GetArraySize(cand);
        int want = n;
        if (cJSON_IsNumber(cnt)) want = (int)cnt->valuedouble < n ? (int)cnt->valuedouble : n;
        if (cJSON_IsNumber(frac)) want = (int)lround(frac->valuedouble * n);
        /* Fisher-Yates over a stream derived from (seed, scenario, line). */
        csl_rng rng;
        csl_rng_derive(&rng, c->seed, c->sc ? c->sc->name : "crash", (uint64_t)op->pos.line);
        for (int i = n - 1; i > 0; i--) {
            int j = (int)csl_rng_below(&rng, (uint64_t)i + 1);
            if (j != i) {
                cJSON *a = cJSON_DetachItemFromArray(cand, i);
                cJSON *b = cJSON_DetachItemFromArray(cand, j);
                cJSON_InsertItemInArray(cand, j, a);
                cJSON_InsertItemInArray(cand, i, b);
            }
        }
        while (cJSON_GetArraySize(cand) > want) cJSON_DeleteItemFromArray(cand, cJSON_GetArraySize(cand) - 1);
        if (!cJSON_GetArraySize(cand)) {
            sr_outcome_fail(out, c, op, SR_FAIL,
                            "no instance to crash: the selection has %d CloudServer(s) with "
                            "status.instanceID set",
                            n);
            cJSON_Delete(cand);
            goto done;
        }
        cJSON_AddItemToObject(body, "ids", cand);
    }
    int st = mock(c, op, "POST", "/_mock/chaos/crash", body, &reply, out);
    if (st >= 0 && st != 200) {
        char em[400];
        mock_error(reply, em, sizeof em);
        sr_outcome_fail(out, c, op, SR_ERROR, "mockcloud refused the crash (%d): %s", st, em);
    } else if (st == 200) {
        const cJSON *crashed = cJSON_GetObjectItemCaseSensitive(reply, "crashed");
        csl_buf w = CSL_BUF_INIT;
        csl_buf_puts(&w, "crash ");
        sr_render(crashed, 200, &w);
        if (c->mon) sr_monitor_fault(c->mon, "crash", csl_buf_str(&w), true);
        csl_buf_free(&w);
    }
done:
    cJSON_Delete(list);
    cJSON_Delete(reply);
    cJSON_Delete(body);
    cJSON_Delete(spec);
}

/* ---------------------------------------------------------------- cloud / journal checks */

/* Whether the check holds on the current state; why says what was seen. */
static bool cloud_holds(sr_ctx *c, const sr_op *op, const cJSON *form, bool journal,
                        csl_buf *why, bool *broken)
{
    char path[200];
    if (journal)
        snprintf(path, sizeof path, "/_mock/journal?since=%llu&limit=10000",
                 (unsigned long long)c->journal_seq0);
    else
        snprintf(path, sizeof path, "/_mock/state");
    cJSON *reply = NULL;
    sr_outcome tmp;
    sr_outcome_init(&tmp);
    int st = mock(c, op, "GET", path, NULL, &reply, &tmp);
    bool ok = false;
    if (st != 200) {
        /* A mockcloud that does not answer (an outage of its own) is
         * retried until the deadline; the last reason is kept. */
        csl_buf_printf(why, "GET %s: %s\n", path, st < 0 ? csl_buf_str(&tmp.msg) : "unexpected status");
        if (st < 0 && !c->stack) *broken = true; /* no mockcloud at all: retrying is pointless */
        goto done;
    }
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(reply, journal ? "items" : "instances");
    const cJSON *where = cJSON_GetObjectItemCaseSensitive(form, "where");
    const cJSON *match = cJSON_GetObjectItemCaseSensitive(form, "match");
    const cJSON *count = cJSON_GetObjectItemCaseSensitive(form, "count");
    bool gone = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(form, "includeGone"));
    int n = 0, bad = 0;
    const cJSON *it;
    csl_buf diffs = CSL_BUF_INIT;
    cJSON_ArrayForEach(it, items)
    {
        if (!journal && !gone) {
            const cJSON *s = cJSON_GetObjectItemCaseSensitive(it, "state");
            if (cJSON_IsString(s) && !strcmp(s->valuestring, "deleting")) continue;
        }
        if (where && !sr_match(where, it, NULL)) continue;
        n++;
        csl_buf d = CSL_BUF_INIT;
        if (match && !sr_match(match, it, &d)) {
            if (bad++ < 10) {
                const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, journal ? "seq" : "id");
                if (cJSON_IsString(id))
                    csl_buf_printf(&diffs, "%s:\n%s", id->valuestring, csl_buf_str(&d));
                else
                    csl_buf_printf(&diffs, "entry %g:\n%s", cJSON_IsNumber(id) ? id->valuedouble : 0.0,
                                   csl_buf_str(&d));
            }
        }
        csl_buf_free(&d);
    }
    ok = bad == 0;
    if (count) {
        cJSON *num = cJSON_CreateNumber(n);
        csl_buf d = CSL_BUF_INIT;
        bool cok = sr_match(count, num, &d);
        if (!cok) csl_buf_printf(why, "count of %s: %s", journal ? "journal entries" : "instances",
                                 csl_buf_str(&d));
        ok = ok && cok;
        csl_buf_free(&d);
        cJSON_Delete(num);
    } else if (n == 0) {
        csl_buf_printf(why, "no %s matched where\n", journal ? "journal entry" : "instance");
        ok = false;
    }
    if (bad) csl_buf_printf(why, "%d of %d %s do not match:\n%s", bad, n,
                            journal ? "entries" : "instances", csl_buf_str(&diffs));
    csl_buf_free(&diffs);
done:
    sr_outcome_free(&tmp);
    cJSON_Delete(reply);
    return ok;
}

void sr_cloud_check(sr_ctx *c, const sr_op *op, int64_t deadline_ns, bool want_match,
                    sr_outcome *out)
{
    cJSON *spec = sr_steps_expand(c, op, op->spec, NULL, out);
    if (!spec) return;
    const cJSON *cloud = cJSON_GetObjectItemCaseSensitive(spec, "cloud");
    const cJSON *form = cloud ? cloud : cJSON_GetObjectItemCaseSensitive(spec, "journal");
    bool journal = !cloud;
    const char *what = journal ? "journal" : "cloud";
    int64_t start = csl_mono_ns();
    int64_t until = deadline_ns;
    if (!want_match) {
        /* error: one look, or every look through the for: window. */
        int64_t for_ns = sr_steps_duration(op->spec, "for", 0);
        until = for_ns ? start + sr_ctx_real_ns(c, for_ns) : start;
        if (for_ns && until > deadline_ns) until = deadline_ns;
    }
    int64_t pause = 200000000;
    csl_buf why = CSL_BUF_INIT;
    for (;;) {
        csl_buf_reset(&why);
        bool broken = false;
        bool holds = cloud_holds(c, op, form, journal, &why, &broken);
        if (broken) {
            sr_outcome_fail(out, c, op, SR_ERROR, "%s", csl_buf_str(&why));
            break;
        }
        if (want_match && holds) break;
        if (!want_match && holds) {
            csl_buf r = CSL_BUF_INIT;
            sr_render(form, RENDER_MAX, &r);
            sr_outcome_fail(out, c, op, SR_FAIL, "the %s check held (it must not): %s", what,
                            csl_buf_str(&r));
            csl_buf_free(&r);
            break;
        }
        if (sr_ctx_interrupted(c)) {
            sr_outcome_fail(out, c, op, SR_ERROR, "interrupted");
            break;
        }
        int64_t now = csl_mono_ns();
        if (now >= until) {
            if (want_match) {
                sr_outcome_fail(out, c, op, SR_FAIL, "the %s check did not hold within %.1fs:\n%s",
                                what, sr_ctx_scen_s(c, now - start), csl_buf_str(&why));
                csl_buf_puts(&out->diff, csl_buf_str(&why));
            }
            break;
        }
        int64_t next = now + pause;
        if (next > until) next = until;
        sr_ctx_sleep_until(c, next);
        if (pause < 2000000000) pause = pause * 2 > 2000000000 ? 2000000000 : pause * 2;
    }
    csl_buf_free(&why);
    cJSON_Delete(spec);
}
