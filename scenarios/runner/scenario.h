/* scenario.h — one scenario file, parsed and checked before anything runs.
 *
 * The parser validates the whole file (shape, types, durations, template
 * names, files referenced by apply) and collects every error it finds as
 * "file:line:col: what is wrong; what was expected", so `validate` reports
 * them all at once. Operation bodies stay cJSON trees owned by the
 * scenario (with their source positions, for run-time messages); the
 * engine reads fields the parser has already checked. The format is
 * documented in docs/scenarios.md. */
#ifndef SR_SCENARIO_H
#define SR_SCENARIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

typedef enum sr_op_kind {
    SR_OP_APPLY,
    SR_OP_PATCH,
    SR_OP_DELETE,
    SR_OP_WAIT,
    SR_OP_ASSERT,
    SR_OP_ERROR,
    SR_OP_FAULT,
    SR_OP_CRASH,
    SR_OP_OPERATOR,
    SR_OP_APISERVER,
    SR_OP_SLEEP,
    SR_OP_EXEC,
    SR_OP_KIND_COUNT
} sr_op_kind;

typedef struct sr_pos {
    int line, col; /* 1-based; 0 when unknown */
} sr_pos;

typedef struct sr_op {
    sr_op_kind kind;
    const cJSON *spec; /* the operation's mapping (the value under its kind key) */
    sr_pos pos;        /* of the kind key */
    int64_t timeout_ns; /* the op's own timeout; 0: the step's (scenario time) */
    /* apply only: the objects to apply, in order (from object, objects or
     * file), templates not yet expanded. An array owned by the scenario. */
    const cJSON *objects;
} sr_op;

typedef struct sr_step {
    char *name;
    sr_pos pos;         /* of the step's mapping */
    int64_t timeout_ns; /* default 30 s, scenario time */
    /* A step written with one operation key has it as try_ops[0]. */
    sr_op *try_ops;
    size_t n_try;
    sr_op *catch_ops;
    size_t n_catch;
    sr_op *finally_ops;
    size_t n_finally;
    sr_op *cleanup_ops;
    size_t n_cleanup;
} sr_step;

typedef struct sr_invariants {
    bool one_instance_per_object;
    bool no_duplicate_creates;
    bool no_orphans;
    bool status_matches_cloud;
    bool finalizers_released;
    bool observed_generation;
} sr_invariants;

/* A threshold is set when its value is ≥ 0 (unset ones are -1). Times in
 * seconds of scenario time; fractions as 0..1; percentages as 0..100. */
typedef struct sr_slos {
    double ctr_avg_s, ctr_p50_s, ctr_p95_s, ctr_p99_s; /* create-to-Ready */
    double reconcile_error_rate;
    double recovery_s;
    double cpu_limit_cores, cpu_max_percent;
    double mem_limit_bytes, mem_max_percent;
    double cloud_calls_per_object, kube_writes_per_object;
} sr_slos;

typedef struct sr_setup {
    bool has_seed;
    uint64_t seed;
    double time_scale; /* 0 when not given (the run's --time-scale, else 1) */
    const cJSON *mock_timings;  /* NULL when absent */
    const cJSON *mock_capacity; /* NULL when absent */
    char **mock_args;
    size_t n_mock_args;
    int operator_replicas; /* 1..3 */
    char **operator_args;
    size_t n_operator_args;
    const cJSON *vars; /* an object (possibly empty), never NULL */
} sr_setup;

typedef struct sr_scenario {
    char *file; /* as given */
    char *dir;  /* its directory, for files named by apply */
    char *name;
    char *description; /* "" when absent */
    char **tags;
    size_t n_tags;
    int64_t timeout_ns; /* default 10 min */
    sr_setup setup;
    sr_step *steps;
    size_t n_steps;
    sr_invariants invariants;
    sr_slos slos;
    bool exclusive; /* has an apiserver step: never runs beside others */
    void *priv;     /* the parser's (the YAML and its positions) */
} sr_scenario;

/* Errors found while loading, each "file:line:col: message". */
typedef struct sr_errors {
    char **items;
    size_t n;
} sr_errors;

/* API */

void sr_errors_init(sr_errors *e);
void sr_errors_add(sr_errors *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sr_errors_free(sr_errors *e);

/* Loads and validates one file. Returns the scenario, or NULL with every
 * error found appended to errs (at least one). */
sr_scenario *sr_scenario_load(const char *path, sr_errors *errs);
void sr_scenario_free(sr_scenario *s);

/* Where node (any tree reachable from the scenario: op specs, objects)
 * came from; false when unknown. */
bool sr_scenario_pos(const sr_scenario *s, const cJSON *node, sr_pos *pos);

const char *sr_op_kind_name(sr_op_kind k); /* "apply", … */

/* Expands PATHs (files, or directories searched recursively for *.yaml and
 * *.yml, sorted) into *files (caller frees each and the array). Returns 0,
 * or -1 with a message in errs (a path that does not exist). */
int sr_collect_paths(char *const *paths, size_t n, char ***files, size_t *nfiles, sr_errors *errs);

#endif
