/* monitor.h — one scenario's observer: measurements and invariants.
 *
 * A monitor watches the scenario's CloudServers (an informer on its
 * namespace) and, on its own thread once a second, samples mockcloud's
 * state and the operator's /metrics. From these it measures create-to-Ready
 * latency (from the create answer the engine reports to the first watch
 * event showing Ready=True), recovery after each fault, operator CPU and
 * RSS, reconcile errors, API calls per object, the Warning Event reasons,
 * and it checks the reconcile invariants continuously (one live instance
 * per object) and at the end (the rest). It writes into the scenario's
 * sr_scenario_result; only its own thread and sr_monitor_* calls touch it
 * until sr_monitor_finish returns. */
#ifndef SR_MONITOR_H
#define SR_MONITOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "env.h"
#include "result.h"
#include "scenario.h"

typedef struct sr_monitor sr_monitor;

/* API */

/* Starts watching (waits for the informer's first sync). t0_mono_ns: the
 * scenario's start (csl_mono_ns), time 0 of every figure. NULL with err. */
sr_monitor *sr_monitor_start(sr_env *env, sr_stack *stack, const sr_scenario *sc,
                             sr_scenario_result *res, int64_t t0_mono_ns, double time_scale,
                             char *err, size_t errsz);

/* The engine tells the monitor what it did (any thread): */
/* A CloudServer was created (the API server answered at csl_mono_ns() = t). */
void sr_monitor_created(sr_monitor *m, const char *uid, int64_t t_mono_ns);
/* A fault started / cleared (name as the timeline shows it). Recovery time
 * runs from the clear until every CloudServer in the namespace is Ready. A
 * crash is a fault that clears at once. */
void sr_monitor_fault(sr_monitor *m, const char *kind, const char *what, bool cleared);

/* Current counts, for steps and progress lines. */
void sr_monitor_counts(sr_monitor *m, int *objects, int *ready);

/* Final checks and totals: call after the scenario's cleanup, once every
 * object the scenario created should be gone. Evaluates the end-of-run
 * invariants enabled in sc->invariants (adding SR_CHECK_INVARIANT checks),
 * fills the totals, and then the SLOs (slo.h). Stops the thread. */
void sr_monitor_finish(sr_monitor *m);
/* Before cleanup, with objects still present: the invariants about live
 * objects (status matches the cloud, observedGeneration caught up),
 * allowing settle_ns for them to converge. */
void sr_monitor_check_live(sr_monitor *m, int64_t settle_ns);
void sr_monitor_free(sr_monitor *m);

#endif
