/* steps.h — private to the engine: how one operation of a scenario is
 * carried out, and the context every operation runs in.
 *
 * One idea: an operation is a function of (context, op, deadline) that
 * fills an outcome — a status, a message for people naming the step's
 * file:line, a diff of expected against actual, captured output. The
 * engine reaches them through a table indexed by sr_op_kind, so the
 * try/catch/finally/cleanup logic can be tested with stubs and no cluster. */
#ifndef SR_STEPS_H
#define SR_STEPS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include "csl/buf.h"
#include "csl/kube.h"
#include "env.h"
#include "monitor.h"
#include "result.h"
#include "scenario.h"

/* What an operation came to. status PASS, FAIL (an expectation did not
 * hold) or ERROR (it could not be carried out); the buffers are empty on
 * pass. */
typedef struct sr_outcome {
    sr_status status;
    csl_buf msg;
    csl_buf diff;
    csl_buf output;
} sr_outcome;

/* An object the scenario created, deleted at its end (newest first). */
typedef struct sr_recorded {
    char *api_version, *kind, *ns, *name, *uid;
} sr_recorded;

typedef struct sr_ctx sr_ctx;

/* One operation kind. deadline_ns: csl_mono_ns() time by which it must
 * be done (real time; the op converts back for messages). */
typedef void (*sr_op_fn)(sr_ctx *c, const sr_op *op, int64_t deadline_ns, sr_outcome *out);

typedef struct sr_ctx {
    sr_env *env;           /* NULL in unit tests */
    sr_stack *stack;       /* NULL in unit tests */
    sr_monitor *mon;       /* may be NULL */
    const sr_scenario *sc;
    sr_scenario_result *res;
    csl_kube *kube;        /* the scenario's client (thread-safe) */
    const char *run_id;
    const char *ns;
    uint64_t seed;
    double time_scale;     /* ≥ 1 */
    int64_t t0_ns;         /* the scenario's start, csl_mono_ns */
    const volatile int *interrupted; /* set by SIGINT/SIGTERM; may be NULL */
    uint64_t journal_seq0; /* mockcloud journal entries before the scenario */
    const sr_op_fn *ops;   /* SR_OP_KIND_COUNT entries; NULL: sr_steps_table */

    pthread_mutex_t mu;    /* guards objs, faults (apply's threads, the timer) */
    sr_recorded *objs;
    size_t n_objs, cap_objs;

    /* Faults open on the timeline; an outage or rule with a duration ends
     * by itself: the timer thread tells the monitor when. */
    struct sr_open_fault {
        char *kind, *what, *id;
        int64_t due_ns; /* csl_mono_ns when it ends by itself; 0: until cleared */
    } *faults;
    size_t n_faults, cap_faults;
    pthread_cond_t timer_cv;
    pthread_t timer;
    bool timer_running, timer_stop;
} sr_ctx;

/* API */

/* The real operations, indexed by sr_op_kind. */
extern const sr_op_fn sr_steps_table[SR_OP_KIND_COUNT];

void sr_outcome_init(sr_outcome *o);
void sr_outcome_free(sr_outcome *o);
/* Sets status and appends a formatted message line prefixed with the op's
 * "file:line: kind: " (a second call adds a line). */
void sr_outcome_fail(sr_outcome *o, const sr_ctx *c, const sr_op *op, sr_status st,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Initialises / frees the parts of c the steps own (mutex, recorded list). */
void sr_ctx_init(sr_ctx *c);
void sr_ctx_free(sr_ctx *c);
/* Stops the fault timer (faults ending after now stay open on the
 * timeline). Call before the monitor finishes; sr_ctx_free calls it too. */
void sr_ctx_faults_end(sr_ctx *c);
/* Records an object created by apply (thread-safe). */
void sr_ctx_record(sr_ctx *c, const char *api_version, const char *kind, const char *ns,
                   const char *name, const char *uid);
/* True when the run was interrupted. */
bool sr_ctx_interrupted(const sr_ctx *c);
/* Scenario-time ns → real ns, and real → scenario seconds. */
int64_t sr_ctx_real_ns(const sr_ctx *c, int64_t scenario_ns);
double sr_ctx_scen_s(const sr_ctx *c, int64_t real_ns);

/* Sleeps until deadline_ns (monotonic) or an interrupt, whichever is
 * first; true when the deadline was reached (not interrupted). */
bool sr_ctx_sleep_until(const sr_ctx *c, int64_t deadline_ns);

/* Deletes every recorded object, newest first, and waits until they are
 * gone or deadline_ns. Appends a line per problem to msg; 0 when all went. */
int sr_steps_delete_recorded(sr_ctx *c, int64_t deadline_ns, csl_buf *msg);

/* The operations (steps_kube.c, steps_cloud.c, steps_proc.c). */
void sr_op_apply(sr_ctx *c, const sr_op *op, int64_t deadline_ns, sr_outcome *out);
void sr_op_patch(sr_ctx *c, const sr_op *op, int64_t deadline_ns, sr_outcome *out);
void sr_op_delete(sr_ctx *c, const sr_op *op, int64_t deadline_ns, sr_outcome *out);
void sr_op_wait(sr_ctx *c, const sr_op *op, int64_t deadline_ns, sr_outcome *out);
void sr_op_assert(sr_ctx *c, const sr_op *op, int64_t deadline_ns, sr_outcome *out);
void sr_op_error(sr_ctx *c, const sr_op *op, int64_t deadline_ns, sr_outcome *out);
void sr_op_fault(sr_ctx *c, const sr_op *op, int64_t deadline_ns, sr_outcome *out);
void sr_op_crash(sr_ctx *c, const sr_op *op, int64_t deadline_ns, sr_outcome *out);
void sr_op_operator(sr_ctx *c, const sr_op *op, int64_t deadline_ns, sr_outcome *out);
void sr_op_apiserver(sr_ctx *c, const sr_op *op, int64_t deadline_ns, sr_outcome *out);
void sr_op_sleep(sr_ctx *c, const sr_op *op, int64_t deadline_ns, sr_outcome *out);
void sr_op_exec(sr_ctx *c, const sr_op *op, int64_t deadline_ns, sr_outcome *out);

/* Cloud/journal forms of assert and error (steps_cloud.c): want_match true
 * for assert. */
void sr_cloud_check(sr_ctx *c, const sr_op *op, int64_t deadline_ns, bool want_match,
                    sr_outcome *out);

/* Helpers shared by the steps files. */
/* The spec with templates expanded (index -1), minus the keys in skip
 * (NULL-terminated, may be NULL). NULL with a message in out. */
cJSON *sr_steps_expand(sr_ctx *c, const sr_op *op, const cJSON *tree, const char *const *skip,
                       sr_outcome *out);
/* A duration field of spec (Go-style string) in scenario ns, or dflt. */
int64_t sr_steps_duration(const cJSON *spec, const char *key, int64_t dflt);

/* A kind's REST resource. The strings live in res_buf. Known kinds
 * (CloudServer, CloudServerSet, Secret, ConfigMap, Lease, Event,
 * Namespace, Pod, Service, ServiceAccount, Deployment) map by table;
 * others from api_version ("group/version" or "v1") and the lowercased
 * kind + "s". -1 when neither works. */
typedef struct sr_kres {
    csl_kube_resource res;
    char group[96], version[32], plural[96];
} sr_kres;
int sr_kind_resource(const char *kind, const char *api_version, sr_kres *out);

#endif
