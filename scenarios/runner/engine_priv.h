/* engine_priv.h — the engine's inner parts, exposed for main.c and the
 * unit tests: the scheduler of scenarios (exclusive ones alone), the step
 * runner (try/catch/finally, cleanup last registered first), soak, the
 * interrupt flag, and the command line. Not a public API. */
#ifndef SR_ENGINE_PRIV_H
#define SR_ENGINE_PRIV_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "engine.h"
#include "steps.h"

#define SR_VERSION "0.1.0"

/* ---------------------------------------------------------------- interrupt */

/* Set (to 1) by SIGINT/SIGTERM once sr_engine_install_signals ran. */
extern volatile int sr_engine_interrupted;
void sr_engine_install_signals(void);

/* ---------------------------------------------------------------- scheduler */

/* Hands out scenarios in order to worker threads: an exclusive one waits
 * until nothing runs and runs alone; nothing starts beside it. */
typedef struct sr_sched {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    const bool *exclusive; /* per scenario */
    size_t n, next;
    int running;
    bool exclusive_running;
    const volatile int *stop; /* may be NULL */
} sr_sched;

void sr_sched_init(sr_sched *s, const bool *exclusive, size_t n, const volatile int *stop);
void sr_sched_destroy(sr_sched *s);
/* The next scenario's index, blocking while the rules say wait; -1 when
 * none is left (or stop is set). */
long sr_sched_take(sr_sched *s);
/* Scenario i finished. */
void sr_sched_done(sr_sched *s, long i);

/* ---------------------------------------------------------------- steps */

/* Runs every step of c->sc into c->res (a step result each, in order):
 * try ops until one fails, then catch ops, then finally ops; later steps
 * are skipped after a failure, an interrupt or the scenario deadline
 * (scen_deadline_ns, monotonic). Cleanup ops are registered as steps start
 * and not run here. Returns the number of steps that did not pass (skips
 * aside). */
int sr_engine_run_steps(sr_ctx *c, int64_t scen_deadline_ns, const sr_op ***cleanups,
                        size_t *n_cleanups);
/* Runs registered cleanup ops last registered first, each with its own
 * timeout (or 30 s scenario time). Failures are appended to msg; returns
 * how many failed. */
int sr_engine_run_cleanups(sr_ctx *c, const sr_op **ops, size_t n, csl_buf *msg);

/* ---------------------------------------------------------------- soak */

/* Repeats the scenarios until duration_ns (real) has passed, pausing
 * interval_ns between iterations; one run, one environment; iteration k
 * ≥ 2 names its results "name#k". The report is rewritten after each
 * scenario. As sr_engine_run otherwise. */
sr_run *sr_engine_soak(const sr_run_options *opt, sr_scenario **scenarios, size_t n,
                       int64_t duration_ns, int64_t interval_ns, bool *env_failed, char *err,
                       size_t errsz);

/* ---------------------------------------------------------------- command line */

typedef enum sr_cmd { SR_CMD_NONE, SR_CMD_RUN, SR_CMD_VALIDATE, SR_CMD_LIST, SR_CMD_COMPARE, SR_CMD_SOAK } sr_cmd;

typedef struct sr_cli {
    sr_cmd cmd;
    bool help;            /* --help given: print the command's usage, exit 0 */
    bool no_progress;     /* --no-progress: plain lines even on a terminal */
    sr_run_options run;   /* run and soak */
    char **paths;         /* borrowed from argv */
    size_t n_paths;
    double threshold_pct; /* compare; default 10 */
    int64_t duration_ns, interval_ns; /* soak */
} sr_cli;

/* Parses argv (argv[0] the program). Returns 0, or -1 with err (a usage
 * error: exit 2). paths point into argv; free with sr_cli_free. */
int sr_cli_parse(int argc, char **argv, sr_cli *cli, char *err, size_t errsz);
void sr_cli_free(sr_cli *cli);
/* The usage text of cmd (SR_CMD_NONE: the overview). */
const char *sr_cli_usage(sr_cmd cmd);

#endif
