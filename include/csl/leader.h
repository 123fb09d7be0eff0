/* leader.h — leader election on a coordination.k8s.io/v1 Lease, as
 * client-go's leaderelection package does it.
 *
 * One idea: a lease is valid for as long as its holder keeps changing it.
 * A candidate never compares the holder's renewTime with its own wall clock
 * (clocks of two machines disagree); it notes, on its own monotonic clock,
 * when it last saw the Lease change, and takes the Lease over only when
 * leaseDurationSeconds have passed since without a change, or when the
 * holder is empty (released). Every write is an update carrying the
 * resourceVersion it read, so two candidates can never both win: the loser
 * gets a 409 Conflict.
 *
 * Life: csl_leader_new → csl_leader_start → (leading: renew every retry
 * period) → csl_leader_stop → csl_leader_free. A leader that cannot renew
 * within the renew deadline, or that sees another holder, has lost: it calls
 * on_stopped_leading and never campaigns again — the program is expected to
 * stop its work and exit, as controller-runtime's manager does. A clean stop
 * calls on_stopped_leading first (the work stops) and then releases the
 * Lease (holderIdentity "", leaseDurationSeconds 1), so a standby takes over
 * at its next retry instead of waiting out the lease. */
#ifndef CSL_LEADER_H
#define CSL_LEADER_H

#include <stdbool.h>
#include <stddef.h>
#include "csl/kube.h"
#include "csl/metrics.h"

typedef struct csl_leader csl_leader;

typedef struct csl_leader_callbacks {
    /* Called on the elector's thread when this process starts leading.
     * Must return promptly: start the work (threads) and return. */
    void (*on_started_leading)(void *ctx);
    /* Called once when leading ends, whether lost or stopped (never if it
     * never started), on the elector's thread; when stopped, before the
     * Lease is released and before csl_leader_stop returns. Stop the work
     * here. */
    void (*on_stopped_leading)(void *ctx);
    /* Called on the elector's thread when the observed holder changes
     * (including to this process); identity is never "". */
    void (*on_new_leader)(const char *identity, void *ctx);
    void *ctx;
} csl_leader_callbacks;

typedef struct csl_leader_config {
    const char *lease_namespace; /* required */
    const char *lease_name;      /* required; also the metric's name label */
    const char *identity;        /* default "<hostname>_<random hex>" */
    /* Seconds; 0 takes the default. Validated: all > 0, lease_duration a
     * whole number of seconds (the Lease stores an integer),
     * lease_duration > renew_deadline > retry_period × 1.2 (the jitter
     * factor). */
    double lease_duration_s; /* default 15 */
    double renew_deadline_s; /* default 10 */
    double retry_period_s;   /* default 2 */
    csl_leader_callbacks callbacks;
    /* When set: leader_election_master_status{name} 1 while leading, else
     * 0; and the election client's rest_client_* metrics. */
    csl_metrics *metrics;
} csl_leader_config;

/* The jitter factor of client-go: a candidate waits retry_period × (1 + r ×
 * 1.2), r uniform in [0, 1), between attempts. */
#define CSL_LEADER_JITTER 1.2

/* API */

/* Checks cfg with the defaults applied. Returns 0, or -1 with err naming the
 * field and the rule ("renew_deadline_s (3) must be greater than
 * retry_period_s × 1.2 (3.6)"). */
int csl_leader_config_validate(const csl_leader_config *cfg, char *err, size_t errsz);

/* Creates an elector (not started) with its own API client built from kcfg,
 * whose requests time out after renew_deadline / 2 (at least 1 s), as
 * client-go's resourcelock does, so that one hung request cannot outlast
 * the renew deadline. NULL with err on a bad cfg (see validate) or when the
 * client cannot be made. */
csl_leader *csl_leader_new(const csl_kube_config *kcfg, const csl_leader_config *cfg, char *err,
                           size_t errsz);
/* Starts campaigning on a thread of its own. -1 with err when already
 * started or the thread cannot start. */
int csl_leader_start(csl_leader *l, char *err, size_t errsz);
/* True while this process holds the Lease (as of its last renewal). */
bool csl_leader_is_leading(csl_leader *l);
/* True once leadership was lost (not by csl_leader_stop). */
bool csl_leader_lost(csl_leader *l);
/* Waits until this process leads, or has lost, or timeout_ms passes.
 * Returns csl_leader_is_leading. */
bool csl_leader_wait_leading(csl_leader *l, long timeout_ms);
/* The identity in use (the configured one or the generated default). */
const char *csl_leader_identity(const csl_leader *l);
/* The holder last observed ("" when none yet), copied into out. */
void csl_leader_holder(csl_leader *l, char *out, size_t outsz);
/* Stops campaigning. When leading: calls on_stopped_leading, then releases
 * the Lease (one update, bounded by the client's timeout). Returns when the
 * elector's thread has ended. Idempotent; not from a callback. */
void csl_leader_stop(csl_leader *l);
/* Stops if needed and frees. NULL is a no-op. */
void csl_leader_free(csl_leader *l);

#endif
