/* engine.c — runs a set of validated scenarios against a target and
 * collects the run: the environment once, then a pool of --parallel worker
 * threads taking scenarios in order (exclusive ones alone), each scenario
 * in its own stack, its steps with try/catch/finally, its cleanup, its
 * checks, and the reports rewritten as each scenario ends.
 *
 * One idea: a scenario's life is a fixed sequence — stack up, monitor,
 * steps, live checks, cleanup ops, deletion of what it created, final
 * checks, stack down — that runs to the end whatever failed before,
 * so a failed or interrupted scenario still leaves nothing behind. */
#include "engine_priv.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "csl/clock.h"
#include "csl/log.h"
#include "csl/rng.h"
#include "progress.h"
#include "report.h"

#define CLEANUP_GRACE_NS (120LL * 1000000000) /* deletion may take the timeout + 2 min */
#define SETTLE_NS (30LL * 1000000000)         /* live checks may wait this (scenario time) */
#define DEFAULT_OP_TIMEOUT_NS (30LL * 1000000000)

/* ---------------------------------------------------------------- interrupt */

volatile int sr_engine_interrupted;

static void on_signal(int sig)
{
    (void)sig;
    __atomic_store_n(&sr_engine_interrupted, 1, __ATOMIC_RELAXED);
}

void sr_engine_install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* ---------------------------------------------------------------- scheduler */

void sr_sched_init(sr_sched *s, const bool *exclusive, size_t n, const volatile int *stop)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    s->exclusive = exclusive;
    s->n = n;
    s->stop = stop;
}

void sr_sched_destroy(sr_sched *s)
{
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
}

static bool stopped(const sr_sched *s)
{
    return s->stop && __atomic_load_n(s->stop, __ATOMIC_RELAXED);
}

long sr_sched_take(sr_sched *s)
{
    long got = -1;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        if (stopped(s) || s->next >= s->n) break;
        bool ex = s->exclusive && s->exclusive[s->next];
        if (ex ? s->running == 0 : !s->exclusive_running) {
            got = (long)s->next++;
            s->running++;
            if (ex) s->exclusive_running = true;
            break;
        }
        /* Woken by sr_sched_done; the timeout only notices an interrupt. */
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&s->cv, &s->mu, &ts);
    }
    pthread_mutex_unlock(&s->mu);
    return got;
}

void sr_sched_done(sr_sched *s, long i)
{
    pthread_mutex_lock(&s->mu);
    s->running--;
    if (s->exclusive && i >= 0 && (size_t)i < s->n && s->exclusive[i]) s->exclusive_running = false;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* ---------------------------------------------------------------- steps */

static int64_t op_deadline(const sr_ctx *c, const sr_op *op, int64_t dflt_deadline,
                           int64_t scen_deadline)
{
    int64_t d = op->timeout_ns > 0 ? csl_mono_ns() + sr_ctx_real_ns(c, op->timeout_ns) : dflt_deadline;
    return d < scen_deadline ? d : scen_deadline;
}

static void run_op(sr_ctx *c, const sr_op *op, int64_t deadline, sr_outcome *o)
{
    if (sr_ctx_interrupted(c)) {
        sr_outcome_fail(o, c, op, SR_ERROR, "interrupted");
        return;
    }
    const sr_op_fn *table = c->ops ? c->ops : sr_steps_table;
    sr_op_fn fn = (unsigned)op->kind < SR_OP_KIND_COUNT ? table[op->kind] : NULL;
    if (!fn) {
        sr_outcome_fail(o, c, op, SR_ERROR, "operation not supported");
        return;
    }
    fn(c, op, deadline, o);
}

/* Appends an op's failure into the step's outcome (status: worst). */
static void merge(sr_outcome *into, sr_outcome *from, const char *prefix, bool take_status)
{
    if (from->status == SR_PASS) return;
    if (take_status && (into->status == SR_PASS || from->status == SR_ERROR))
        into->status = from->status;
    if (into->msg.len) csl_buf_putc(&into->msg, '\n');
    if (prefix) csl_buf_puts(&into->msg, prefix);
    csl_buf_puts(&into->msg, csl_buf_str(&from->msg));
    if (from->diff.len) {
        if (into->diff.len) csl_buf_putc(&into->diff, '\n');
        csl_buf_puts(&into->diff, csl_buf_str(&from->diff));
    }
}

static int push_cleanup(const sr_op ***v, size_t *n, const sr_op *op)
{
    const sr_op **nv = realloc(*v, (*n + 1) * sizeof *nv);
    if (!nv) return -1;
    nv[(*n)++] = op;
    *v = nv;
    return 0;
}

int sr_engine_run_steps(sr_ctx *c, int64_t scen_deadline, const sr_op ***cleanups,
                        size_t *n_cleanups)
{
    const sr_scenario *sc = c->sc;
    int failed = 0;
    const char *skip_why = NULL;
    for (size_t i = 0; i < sc->n_steps; i++) {
        const sr_step *st = &sc->steps[i];
        if (!sr_result_add_step(c->res, st->name, sc->file, st->pos.line)) continue;
        size_t idx = c->res->n_steps - 1;
        int64_t t_start = csl_mono_ns();
        c->res->steps[idx].start_s = sr_ctx_scen_s(c, t_start - c->t0_ns);
        if (!skip_why && sr_ctx_interrupted(c)) skip_why = "interrupted";
        if (!skip_why && t_start >= scen_deadline) skip_why = "the scenario's timeout was reached";
        if (skip_why) {
            c->res->steps[idx].status = SR_SKIP;
            sr_set_str(&c->res->steps[idx].message, skip_why);
            continue;
        }
        for (size_t k = 0; k < st->n_cleanup; k++) push_cleanup(cleanups, n_cleanups, &st->cleanup_ops[k]);

        int64_t step_deadline = t_start + sr_ctx_real_ns(c, st->timeout_ns);
        if (step_deadline > scen_deadline) step_deadline = scen_deadline;
        sr_outcome res;
        sr_outcome_init(&res);
        for (size_t k = 0; k < st->n_try && res.status == SR_PASS; k++) {
            sr_outcome o;
            sr_outcome_init(&o);
            run_op(c, &st->try_ops[k], op_deadline(c, &st->try_ops[k], step_deadline, scen_deadline), &o);
            merge(&res, &o, NULL, true);
            if (o.output.len) {
                csl_buf_reset(&res.output);
                csl_buf_puts(&res.output, csl_buf_str(&o.output));
            }
            sr_outcome_free(&o);
        }
        /* catch and finally get a fresh step timeout: they run after a
         * failure that may have used the step's up. */
        int64_t after = csl_mono_ns() + sr_ctx_real_ns(c, st->timeout_ns);
        int64_t hard = scen_deadline + sr_ctx_real_ns(c, CLEANUP_GRACE_NS);
        if (after > hard) after = hard;
        if (res.status != SR_PASS) {
            for (size_t k = 0; k < st->n_catch; k++) {
                sr_outcome o;
                sr_outcome_init(&o);
                run_op(c, &st->catch_ops[k], op_deadline(c, &st->catch_ops[k], after, hard), &o);
                merge(&res, &o, "catch: ", false);
                if (o.output.len) {
                    csl_buf_reset(&res.output);
                    csl_buf_puts(&res.output, csl_buf_str(&o.output));
                }
                sr_outcome_free(&o);
            }
        }
        for (size_t k = 0; k < st->n_finally; k++) {
            sr_outcome o;
            sr_outcome_init(&o);
            run_op(c, &st->finally_ops[k], op_deadline(c, &st->finally_ops[k], after, hard), &o);
            merge(&res, &o, "finally: ", true);
            sr_outcome_free(&o);
        }
        sr_step_result *sr = &c->res->steps[idx];
        sr->status = res.status;
        sr->duration_s = sr_ctx_scen_s(c, csl_mono_ns() - t_start);
        if (res.msg.len) sr_set_str(&sr->message, csl_buf_str(&res.msg));
        if (res.diff.len) sr_set_str(&sr->diff, csl_buf_str(&res.diff));
        if (res.output.len) sr_set_str(&sr->output, csl_buf_str(&res.output));
        if (res.status != SR_PASS) {
            failed++;
            skip_why = sr_ctx_interrupted(c) ? "interrupted" : "an earlier step failed";
        }
        sr_outcome_free(&res);
    }
    return failed;
}

int sr_engine_run_cleanups(sr_ctx *c, const sr_op **ops, size_t n, csl_buf *msg)
{
    int bad = 0;
    for (size_t k = n; k-- > 0;) {
        sr_outcome o;
        sr_outcome_init(&o);
        int64_t t = ops[k]->timeout_ns > 0 ? ops[k]->timeout_ns : DEFAULT_OP_TIMEOUT_NS;
        int64_t deadline = csl_mono_ns() + sr_ctx_real_ns(c, t);
        /* An interrupt must not stop cleanup: it runs with the flag unseen. */
        const volatile int *saved = c->interrupted;
        c->interrupted = NULL;
        const sr_op_fn *table = c->ops ? c->ops : sr_steps_table;
        if (table[ops[k]->kind]) table[ops[k]->kind](c, ops[k], deadline, &o);
        c->interrupted = saved;
        if (o.status != SR_PASS) {
            bad++;
            if (msg->len) csl_buf_putc(msg, '\n');
            csl_buf_printf(msg, "cleanup: %s", csl_buf_str(&o.msg));
        }
        sr_outcome_free(&o);
    }
    return bad;
}

/* ---------------------------------------------------------------- the run */

typedef struct engine {
    const sr_run_options *opt;
    sr_env *env;
    sr_run *run;
    char dir[PATH_MAX];
    sr_scenario **list;
    size_t n;
    int iteration; /* soak: 1, 2, … */
    sr_sched sched;
    bool *exclusive;
    sr_progress *prog;
    pthread_mutex_t report_mu;
    sr_scenario_result **done; /* finished results, for reports mid-run */
    size_t n_done, cap_done;
} engine;

static void write_reports(engine *e, bool final)
{
    pthread_mutex_lock(&e->report_mu);
    /* Mid-run, only finished scenarios: the others are still being
     * written by their threads. */
    sr_run snap = *e->run;
    if (!final) {
        snap.scenarios = e->done;
        snap.n_scenarios = e->n_done;
    }
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        snap.runner_cpu_s = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
                            (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
    snap.duration_s = (double)(csl_wall_ms() - e->run->start_ms) / 1000.0;
    e->run->runner_cpu_s = snap.runner_cpu_s;
    e->run->duration_s = snap.duration_s;
    char err[512];
    if (sr_report_write_all(&snap, e->dir, err, sizeof err) < 0)
        sr_progress_note(e->prog, "warning: report not written: %s", err);
    pthread_mutex_unlock(&e->report_mu);
}

static void mark_done(engine *e, sr_scenario_result *r)
{
    pthread_mutex_lock(&e->report_mu);
    if (e->n_done == e->cap_done) {
        size_t cap = e->cap_done ? e->cap_done * 2 : 16;
        sr_scenario_result **v = realloc(e->done, cap * sizeof *v);
        if (v) {
            e->done = v;
            e->cap_done = cap;
        }
    }
    if (e->n_done < e->cap_done) e->done[e->n_done++] = r;
    pthread_mutex_unlock(&e->report_mu);
}

/* The first failure of a scenario, for its one-line message. */
static void settle_status(sr_scenario_result *r)
{
    bool failed = false;
    for (size_t i = 0; i < r->n_steps && !failed; i++)
        if (r->steps[i].status == SR_FAIL || r->steps[i].status == SR_ERROR) {
            failed = true;
            if (r->status == SR_PASS) r->status = SR_FAIL;
            char line[600];
            snprintf(line, sizeof line, "step \"%s\": %s", r->steps[i].name,
                     r->steps[i].message ? r->steps[i].message : sr_status_name(r->steps[i].status));
            line[strcspn(line, "\n")] = 0;
            if (!r->message) sr_set_str(&r->message, line);
        }
    for (size_t i = 0; i < r->n_checks; i++)
        if (r->checks[i].status == SR_FAIL || r->checks[i].status == SR_ERROR) {
            if (r->status == SR_PASS) r->status = SR_FAIL;
            if (!r->message) {
                char line[600];
                snprintf(line, sizeof line, "%s %s: %s",
                         r->checks[i].kind == SR_CHECK_SLO ? "SLO" : "invariant", r->checks[i].name,
                         r->checks[i].message ? r->checks[i].message : "failed");
                line[strcspn(line, "\n")] = 0;
                sr_set_str(&r->message, line);
            }
        }
}

static void skip_all_steps(sr_scenario_result *r, const sr_scenario *sc, const char *why)
{
    for (size_t i = 0; i < sc->n_steps; i++) {
        sr_step_result *s = sr_result_add_step(r, sc->steps[i].name, sc->file, sc->steps[i].pos.line);
        if (!s) continue;
        s->status = SR_SKIP;
        sr_set_str(&s->message, why);
    }
}

static void run_scenario(engine *e, const sr_scenario *sc)
{
    const sr_run_options *opt = e->opt;
    char name[300];
    if (e->iteration > 1)
        snprintf(name, sizeof name, "%s#%d", sc->name, e->iteration);
    else
        snprintf(name, sizeof name, "%s", sc->name);
    sr_scenario_result *r = sr_run_add_scenario(e->run, name, sc->file);
    if (!r) return;
    double ts = opt->time_scale > 0 ? opt->time_scale : sc->setup.time_scale > 0 ? sc->setup.time_scale : 1;
    uint64_t seed = sc->setup.has_seed ? sc->setup.seed : opt->has_seed ? opt->seed : 1;
    r->time_scale = ts;
    r->seed = seed;
    r->tags = calloc(sc->n_tags + 1, sizeof *r->tags);
    for (size_t i = 0; r->tags && i < sc->n_tags; i++)
        if ((r->tags[r->n_tags] = strdup(sc->tags[i]))) r->n_tags++;
    int64_t real0 = csl_mono_ns();
    r->start_ms = csl_wall_ms();

    sr_stack_options so = {.scenario = sc->name,
                           .seed = seed,
                           .time_scale = ts,
                           .timings = sc->setup.mock_timings,
                           .capacity = sc->setup.mock_capacity,
                           .mock_args = sc->setup.mock_args,
                           .n_mock_args = sc->setup.n_mock_args,
                           .replicas = sc->setup.operator_replicas > 0 ? sc->setup.operator_replicas : 1,
                           .operator_args = sc->setup.operator_args,
                           .n_operator_args = sc->setup.n_operator_args};
    char err[1024] = "";
    sr_ctx c;
    memset(&c, 0, sizeof c);
    c.env = e->env;
    c.sc = sc;
    c.res = r;
    c.run_id = e->run->run_id;
    c.seed = seed;
    c.time_scale = ts;
    c.interrupted = &sr_engine_interrupted;
    sr_ctx_init(&c);
    const sr_op **cleanups = NULL;
    size_t n_cleanups = 0;

    sr_progress_scenario_start(e->prog, name, NULL);
    c.stack = sr_stack_up(e->env, &so, err, sizeof err);
    if (!c.stack) {
        r->status = SR_ERROR;
        char m[1200];
        snprintf(m, sizeof m, "setting up the scenario's stack failed: %s", err);
        sr_set_str(&r->message, m);
        skip_all_steps(r, sc, "not run: the stack could not be set up");
        goto out;
    }
    c.ns = sr_stack_namespace(c.stack);
    sr_set_str(&r->ns, c.ns);
    if (!(c.kube = sr_env_kube_new(e->env, err, sizeof err))) {
        r->status = SR_ERROR;
        sr_set_str(&r->message, err);
        skip_all_steps(r, sc, "not run: no Kubernetes client");
        goto down;
    }
    cJSON *j = NULL;
    if (sr_mock_request(c.stack, "GET", "/_mock/journal?limit=1", NULL, &j, err, sizeof err) == 200) {
        const cJSON *ls = cJSON_GetObjectItemCaseSensitive(j, "lastSeq");
        if (cJSON_IsNumber(ls) && ls->valuedouble > 0) c.journal_seq0 = (uint64_t)ls->valuedouble;
    }
    cJSON_Delete(j);
    c.t0_ns = csl_mono_ns();
    c.mon = sr_monitor_start(e->env, c.stack, sc, r, c.t0_ns, ts, err, sizeof err);
    if (!c.mon) {
        r->status = SR_ERROR;
        char m[1200];
        snprintf(m, sizeof m, "starting the monitor failed: %s", err);
        sr_set_str(&r->message, m);
        skip_all_steps(r, sc, "not run: the monitor could not start");
        goto down;
    }
    int64_t scen_deadline = c.t0_ns + sr_ctx_real_ns(&c, sc->timeout_ns);
    sr_engine_run_steps(&c, scen_deadline, &cleanups, &n_cleanups);

    /* Live invariants while the objects still exist, then cleanup. */
    sr_monitor_check_live(c.mon, sr_engine_interrupted ? 0 : SETTLE_NS);
    csl_buf cmsg = CSL_BUF_INIT;
    int64_t t_clean = csl_mono_ns();
    int bad = sr_engine_run_cleanups(&c, cleanups, n_cleanups, &cmsg);
    int64_t left = scen_deadline - csl_mono_ns();
    int64_t del_deadline = csl_mono_ns() + (left > 0 ? left : 0) + sr_ctx_real_ns(&c, CLEANUP_GRACE_NS);
    const volatile int *saved = c.interrupted;
    c.interrupted = NULL; /* an interrupt still deletes what we made */
    csl_buf dmsg = CSL_BUF_INIT;
    if (sr_steps_delete_recorded(&c, del_deadline, &dmsg) < 0) {
        bad++;
        if (cmsg.len) csl_buf_putc(&cmsg, '\n');
        csl_buf_puts(&cmsg, csl_buf_str(&dmsg));
    }
    c.interrupted = saved;
    csl_buf_free(&dmsg);
    if (bad || n_cleanups) {
        sr_step_result *s = sr_result_add_step(r, "cleanup", sc->file, sc->steps ? sc->steps[0].pos.line : 0);
        if (s) {
            s->status = bad ? SR_FAIL : SR_PASS;
            s->start_s = sr_ctx_scen_s(&c, t_clean - c.t0_ns);
            s->duration_s = sr_ctx_scen_s(&c, csl_mono_ns() - t_clean);
            if (bad) sr_set_str(&s->message, csl_buf_str(&cmsg));
        }
    }
    csl_buf_free(&cmsg);
    sr_ctx_faults_end(&c);
    sr_monitor_finish(c.mon);

down:
    sr_stack_down(c.stack);
out:
    if (c.mon) sr_monitor_free(c.mon);
    if (c.kube) csl_kube_free(c.kube);
    free(cleanups);
    sr_ctx_free(&c);
    r->real_duration_s = (double)(csl_mono_ns() - real0) / 1e9;
    r->duration_s = r->real_duration_s * ts;
    if (sr_engine_interrupted && r->status == SR_PASS) {
        r->status = SR_ERROR;
        sr_set_str(&r->message, "interrupted");
    }
    settle_status(r);
    for (size_t i = 0; i < r->n_steps; i++)
        if (r->steps[i].status != SR_SKIP || i + 1 == r->n_steps)
            sr_progress_step(e->prog, name, r->steps[i].name, r->steps[i].status,
                             r->steps[i].duration_s, r->steps[i].message);
    sr_progress_scenario_end(e->prog, name, r->status, r->real_duration_s, r->message);
    mark_done(e, r);
    write_reports(e, false);
}

static void *worker(void *arg)
{
    engine *e = arg;
    long i;
    while ((i = sr_sched_take(&e->sched)) >= 0) {
        run_scenario(e, e->list[i]);
        sr_sched_done(&e->sched, i);
    }
    return NULL;
}

/* One pass over every scenario with the pool. */
static void run_pass(engine *e)
{
    sr_sched_init(&e->sched, e->exclusive, e->n, &sr_engine_interrupted);
    int nt = e->opt->parallel > 0 ? e->opt->parallel : 1;
    if ((size_t)nt > e->n) nt = (int)e->n;
    pthread_t *t = calloc((size_t)(nt > 0 ? nt : 1), sizeof *t);
    int started = 0;
    for (int i = 1; t && i < nt; i++)
        if (pthread_create(&t[started], NULL, worker, e) == 0) started++;
    worker(e);
    for (int i = 0; i < started; i++) pthread_join(t[i], NULL);
    free(t);
    sr_sched_destroy(&e->sched);
}

static int mkdirs(const char *path)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s", path);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = 0;
        if (mkdir(p, 0755) < 0 && errno != EEXIST) return -1;
        *s = '/';
    }
    return mkdir(p, 0755) < 0 && errno != EEXIST ? -1 : 0;
}

/* reports/latest → <run-id>, replaced atomically. */
static void link_latest(const char *report_dir, const char *run_id)
{
    char tmp[PATH_MAX], dst[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s/.latest.%d", report_dir, (int)getpid());
    snprintf(dst, sizeof dst, "%s/latest", report_dir);
    unlink(tmp);
    if (symlink(run_id, tmp) == 0 && rename(tmp, dst) < 0) unlink(tmp);
}

static sr_run *engine_main(const sr_run_options *opt, sr_scenario **scenarios, size_t n,
                           int64_t soak_ns, int64_t interval_ns, bool *env_failed, char *err,
                           size_t errsz)
{
    engine e;
    memset(&e, 0, sizeof e);
    e.opt = opt;
    pthread_mutex_init(&e.report_mu, NULL);
    *env_failed = false;
    sr_run *result = NULL;

    e.list = calloc(n ? n : 1, sizeof *e.list);
    e.exclusive = calloc(n ? n : 1, sizeof *e.exclusive);
    if (!e.list || !e.exclusive) {
        snprintf(err, errsz, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        bool keep = !opt->tag;
        for (size_t k = 0; !keep && k < scenarios[i]->n_tags; k++)
            keep = !strcmp(scenarios[i]->tags[k], opt->tag);
        if (keep) {
            e.exclusive[e.n] = scenarios[i]->exclusive;
            e.list[e.n++] = scenarios[i];
        }
    }

    char run_id[128];
    if (opt->run_id) {
        snprintf(run_id, sizeof run_id, "%s", opt->run_id);
    } else {
        time_t now = time(NULL);
        struct tm tm;
        localtime_r(&now, &tm);
        char ts[32];
        strftime(ts, sizeof ts, "%Y%m%d-%H%M%S", &tm);
        csl_rng rng;
        csl_rng_seed(&rng, (uint64_t)csl_mono_ns() ^ ((uint64_t)getpid() << 32));
        snprintf(run_id, sizeof run_id, "%s-%04x", ts, (unsigned)(csl_rng_next(&rng) & 0xffff));
    }
    const char *rdir = opt->report_dir ? opt->report_dir : "reports";
    snprintf(e.dir, sizeof e.dir, "%s/%s", rdir, run_id);
    if (mkdirs(e.dir) < 0) {
        snprintf(err, errsz, "cannot create the report directory %s: %s", e.dir, strerror(errno));
        *env_failed = true;
        goto out;
    }
    char target[PATH_MAX + 64];
    if (opt->env.local)
        snprintf(target, sizeof target, "local");
    else
        snprintf(target, sizeof target, "kubeconfig:%s%s%s", opt->env.kubeconfig ? opt->env.kubeconfig : "",
                 opt->env.context ? "@" : "", opt->env.context ? opt->env.context : "");
    e.run = sr_run_new(run_id, target);
    if (!e.run) {
        snprintf(err, errsz, "out of memory");
        goto out;
    }
    sr_set_str(&e.run->runner_version, SR_VERSION);
    e.run->seed = opt->has_seed ? opt->seed : 1;
    e.run->time_scale = opt->time_scale > 0 ? opt->time_scale : 1;
    e.run->parallel = opt->parallel > 0 ? opt->parallel : 1;
    if (opt->env.break_mode) sr_set_str(&e.run->break_mode, opt->env.break_mode);

    e.prog = sr_progress_new(stderr, opt->progress_tty, soak_ns ? 0 : e.n);
    sr_progress_note(e.prog, "run %s: %zu scenario(s), report in %s", run_id, e.n, e.dir);

    sr_env_options eo = opt->env;
    char work[PATH_MAX];
    snprintf(work, sizeof work, "%s", e.dir);
    eo.work_dir = work;
    sr_progress_note(e.prog, "bringing up the target (%s)…", target);
    e.env = sr_env_up(&eo, err, errsz);
    if (!e.env) {
        *env_failed = true;
        sr_progress_done(e.prog);
        goto out;
    }
    sr_progress_note(e.prog, "target ready");
    int64_t start = csl_mono_ns();
    e.iteration = soak_ns ? 1 : 0;
    for (;;) {
        run_pass(&e);
        if (!soak_ns || sr_engine_interrupted) break;
        if (csl_mono_ns() - start >= soak_ns) break;
        sr_ctx pause = {.interrupted = &sr_engine_interrupted};
        int64_t until = csl_mono_ns() + interval_ns;
        if (until > start + soak_ns) until = start + soak_ns;
        if (interval_ns > 0) sr_ctx_sleep_until(&pause, until);
        if (sr_engine_interrupted || csl_mono_ns() - start >= soak_ns) break;
        e.iteration++;
        sr_progress_note(e.prog, "soak: iteration %d", e.iteration);
    }
    sr_progress_done(e.prog);
    sr_env_down(e.env);
    write_reports(&e, true);
    link_latest(rdir, run_id);
    result = e.run;
    e.run = NULL;
out:
    if (e.run) {
        /* The target never came up: still leave a report saying so. */
        write_reports(&e, true);
        sr_run_free(e.run);
    }
    sr_progress_free(e.prog);
    free(e.done);
    free(e.list);
    free(e.exclusive);
    pthread_mutex_destroy(&e.report_mu);
    return result;
}

sr_run *sr_engine_run(const sr_run_options *opt, sr_scenario **scenarios, size_t n,
                      bool *env_failed, char *err, size_t errsz)
{
    return engine_main(opt, scenarios, n, 0, 0, env_failed, err, errsz);
}

sr_run *sr_engine_soak(const sr_run_options *opt, sr_scenario **scenarios, size_t n,
                       int64_t duration_ns, int64_t interval_ns, bool *env_failed, char *err,
                       size_t errsz)
{
    if (duration_ns <= 0) duration_ns = 1;
    return engine_main(opt, scenarios, n, duration_ns, interval_ns, env_failed, err, errsz);
}
