/* engine.h — runs scenarios: validates them all first, brings the target
 * up, runs up to --parallel scenarios at once (each on its own thread, in
 * its own stack), executes their steps with try/catch/finally and
 * cleanup, and collects an sr_run that the report writers turn into files. */
#ifndef SR_ENGINE_H
#define SR_ENGINE_H

#include <stdbool.h>
#include <stdint.h>
#include "env.h"
#include "result.h"
#include "scenario.h"

typedef struct sr_run_options {
    sr_env_options env;
    int parallel;          /* ≥ 1 */
    bool has_seed;
    uint64_t seed;
    double time_scale;     /* 0: each scenario's own (else 1) */
    const char *report_dir;
    const char *run_id;    /* NULL: generated */
    const char *tag;       /* NULL: all; else only scenarios with this tag */
    bool progress_tty;     /* live progress vs plain lines */
} sr_run_options;

/* API */

/* Runs the scenarios (already loaded and valid) and returns the run
 * (caller frees). Writes the reports as scenarios finish. NULL with err
 * when the target could not be brought up (*env_failed set). */
sr_run *sr_engine_run(const sr_run_options *opt, sr_scenario **scenarios, size_t n,
                      bool *env_failed, char *err, size_t errsz);

#endif
