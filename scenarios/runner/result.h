/* result.h — what a run found: per scenario its steps, checks
 * (invariants and SLOs), measurements and timeline; the input of every
 * report writer (report.h) and of compare.
 *
 * One owner: the engine builds an sr_run while it runs (one scenario per
 * thread: each thread only touches its own sr_scenario_result, so adding
 * scenarios to the run is the only locked operation). Times are seconds
 * of scenario time (real time × time scale) from the scenario's start,
 * unless named _ms (epoch milliseconds, real). */
#ifndef SR_RESULT_H
#define SR_RESULT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum sr_status { SR_PASS, SR_FAIL, SR_ERROR, SR_SKIP } sr_status;

typedef struct sr_step_result {
    char *name;
    char *file;
    int line;
    sr_status status;
    double start_s, duration_s;
    char *message; /* NULL on pass: what failed and why */
    char *diff;    /* NULL or expected-against-actual lines */
    char *output;  /* NULL or captured output (exec), last 4 KiB */
} sr_step_result;

typedef enum sr_check_kind { SR_CHECK_INVARIANT, SR_CHECK_SLO } sr_check_kind;

typedef struct sr_check_result {
    sr_check_kind kind;
    char *name;   /* "oneInstancePerObject", "createToReady.p95", … */
    sr_status status; /* SKIP: not measurable here (message says why) */
    double value;     /* measured (SLO), or violation count (invariant) */
    double threshold; /* SLO limit; 0 for invariants */
    char *unit;       /* "s", "ratio", "%", "calls", "" */
    char *message;    /* NULL on pass; the first violations otherwise */
} sr_check_result;

typedef struct sr_timeline_event {
    double start_s;
    double end_s; /* < 0: an instant (a crash, a kill) */
    char *kind;   /* "fault", "outage", "crash", "operator", "apiserver", "tokens" */
    char *what;   /* a short description: "503 on POST /v1/instances" */
} sr_timeline_event;

typedef struct sr_sample {
    double t_s;
    int objects;  /* CloudServers in the namespace */
    int ready;    /* … with Ready=True */
    double cpu_cores; /* operator CPU over the last interval; < 0 unknown */
    double rss_bytes; /* operator RSS; < 0 unknown */
} sr_sample;

typedef struct sr_count {
    char *key; /* an Event reason, an error reason */
    long n;
} sr_count;

typedef struct sr_scenario_result {
    char *name;
    char *file;
    char *ns;
    char **tags;
    size_t n_tags;
    sr_status status;
    char *message; /* NULL on pass: the first failure, one line */
    int64_t start_ms;
    double duration_s; /* scenario time */
    double real_duration_s;
    double time_scale;
    uint64_t seed;

    sr_step_result *steps;
    size_t n_steps;
    sr_check_result *checks;
    size_t n_checks;

    double *ctr_s; /* create-to-Ready latencies, one per object that got Ready */
    size_t n_ctr;
    double *recovery_s; /* one per cleared fault */
    size_t n_recovery;
    sr_timeline_event *timeline;
    size_t n_timeline;
    sr_sample *samples;
    size_t n_samples;
    sr_count *event_reasons; /* Warning Events of the namespace by reason */
    size_t n_event_reasons;

    /* Totals over the scenario (< 0: not measured). */
    long objects_created;
    double cloud_calls;
    double kube_writes;
    double reconciles, reconcile_errors;
    double cpu_peak_cores, rss_peak_bytes;
} sr_scenario_result;

typedef struct sr_run {
    char *run_id;
    char *target; /* "local", or "kubeconfig:<path>[@context]" */
    char *runner_version;
    int64_t start_ms;
    double duration_s; /* real */
    double runner_cpu_s; /* the runner's own CPU time (getrusage), < 0 unknown */
    uint64_t seed;
    double time_scale; /* the run's --time-scale (1 when not given) */
    int parallel;
    char *break_mode;  /* NULL, or the CSL_OPERATOR_BREAK given with --break */
    sr_scenario_result **scenarios;
    size_t n_scenarios;
    pthread_mutex_t mu;
} sr_run;

/* API */

sr_run *sr_run_new(const char *run_id, const char *target);
void sr_run_free(sr_run *r);
/* A new scenario result appended to r (thread-safe); owned by r. */
sr_scenario_result *sr_run_add_scenario(sr_run *r, const char *name, const char *file);
/* Pass when every scenario passed (skipped ones aside). */
sr_status sr_run_status(const sr_run *r);

/* Appenders: copy their strings; return the new element, NULL on no memory. */
sr_step_result *sr_result_add_step(sr_scenario_result *s, const char *name, const char *file,
                                   int line);
sr_check_result *sr_result_add_check(sr_scenario_result *s, sr_check_kind kind, const char *name,
                                     sr_status status, double value, double threshold,
                                     const char *unit, const char *message);
sr_timeline_event *sr_result_add_event(sr_scenario_result *s, const char *kind, const char *what,
                                       double start_s, double end_s);
int sr_result_add_sample(sr_scenario_result *s, const sr_sample *sample);
int sr_result_add_ctr(sr_scenario_result *s, double seconds);
int sr_result_add_recovery(sr_scenario_result *s, double seconds);
int sr_result_count(sr_scenario_result *s, const char *reason, long n); /* adds n to reason */
/* Sets a malloc'd copy (frees the old one); for message/diff/output fields. */
void sr_set_str(char **field, const char *value);

const char *sr_status_name(sr_status st); /* "pass", "fail", "error", "skip" */

#endif
