/* manager.h — the operator's process around its reconcilers: the clients,
 * caches, work queues, workers, leader election, metrics and probes, and
 * an orderly shutdown. Internal to the cloudserver-operator program.
 *
 * One idea: the manager owns every long-lived thing and hands the
 * reconcilers (cloudserver.c, cloudserverset.c) one struct to read; they
 * keep no state of their own but a failure count per key. */
#ifndef OP_MANAGER_H
#define OP_MANAGER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "csl/cloud.h"
#include "csl/events.h"
#include "csl/informer.h"
#include "csl/kube.h"
#include "csl/leader.h"
#include "csl/metrics.h"
#include "csl/workqueue.h"
#include "echo.h"
#include "reconcile.h"

#define OP_VERSION "0.1.0"
#define OP_FIELD_MANAGER "cloudserver-operator"

/* What the command line sets (main.c fills it; see --help). */
typedef struct op_options {
    const char *kubeconfig;
    const char *context;
    const char *namespace; /* NULL: all */
    bool leader_elect;
    const char *leader_ns;
    const char *leader_id;
    const char *metrics_addr; /* NULL: disabled */
    const char *health_addr;  /* NULL: disabled */
    int max_concurrent;
    const char *cloud_endpoint;
    const char *creds_ns, *creds_name;
    int64_t sync_period_ms;
    int64_t rl_base_ns, rl_max_ns;
    int64_t cloud_timeout_ms;
    const char *ready_file;
    /* --zones: fallback zones for a replacement out of capacity (op_config.zones) */
    const char *const *zones;
    size_t n_zones;
    /* CSL_OPERATOR_BREAK (test-only mutations) */
    bool break_no_finalizer, break_no_idempotency_key, break_no_failover;
} op_options;

/* A map from key to a small number: consecutive failures per key (for
 * op_input.failures) and the phase each object was last seen in (for
 * cloudserver_instances{phase}). */
typedef struct op_keymap op_keymap;

/* The credentials as last read from the Secret. */
typedef struct op_credentials {
    pthread_mutex_t mu;
    op_creds state;
    char detail[256];
    uint64_t version; /* bumped on every change */
} op_credentials;

typedef struct op_mgr {
    const op_options *opt;
    csl_kube_config kcfg;
    csl_kube *kube;
    csl_cloud *cloud;
    csl_metrics *metrics;
    csl_event_recorder *events;
    op_config cfg;

    csl_informer *cs_inf, *set_inf, *secret_inf;
    csl_workqueue *cs_q, *set_q;
    op_keymap *cs_fail, *set_fail, *cs_phase;
    /* The watch's echo of our own writes to CloudServers (echo.h). */
    op_echo *echo;
    op_credentials creds;
    /* Secrets named by spec.credentialsSecretRef (credentials.c): a list
     * guarded by refs_mu, which only creating and finding take. */
    pthread_mutex_t refs_mu;
    struct op_secret_ref *refs;

    /* controller-runtime's metrics, labelled controller= */
    csl_metric *m_reconcile_total, *m_reconcile_errors, *m_reconcile_time, *m_max_concurrent,
        *m_active_workers;
    csl_metric *m_instances, *m_create_to_ready, *m_failovers, *m_backups;

    volatile int stopping;
} op_mgr;

/* API: manager (main.c) */

/* Runs the operator until SIGTERM/SIGINT (which the caller has blocked in
 * every thread) or a lost leadership. Returns the exit code: 0 after a
 * clean stop, 1 when start-up fails or leadership was lost. */
int op_manager_run(const op_options *opt);

/* Parses --zones "a,b,c" into o->zones (storage of its own, kept for the
 * process's life). Returns 0, or -1 with why ("zone 2 is empty", …). */
int op_zones_parse(const char *list, op_options *o, char *why, size_t whysz);

/* API: key maps (thread-safe) */
op_keymap *op_keymap_new(void);
void op_keymap_free(op_keymap *f);
unsigned op_keymap_get(op_keymap *f, const char *key);
/* n == 0 forgets the key. Out of memory: the value is lost (logged). */
void op_keymap_set(op_keymap *f, const char *key, unsigned n);
/* counts[v] += 1 for every key whose value v < n. */
void op_keymap_count(op_keymap *f, unsigned *counts, size_t n);

/* API: credentials (credentials.c) */

/* Reads the token from a Secret (NULL: absent) into the manager's state and
 * the cloud client. Returns true when the token changed. */
bool op_credentials_apply(op_mgr *m, const cJSON *secret);
/* The current state, and a detail for messages. */
op_creds op_credentials_get(op_mgr *m, char *detail, size_t detailsz);
/* The cloud client for object o and the state of its credentials (a
 * detail for messages): the shared client and the default Secret, or with
 * spec.credentialsSecretRef a client of its own reading that Secret in
 * o's namespace. The first object naming a Secret starts its watch (and
 * waits up to 5 s for the first read); a change of it re-queues every
 * CloudServer. Never NULL. */
csl_cloud *op_credentials_for(op_mgr *m, const op_object *o, op_creds *state, char *detail,
                              size_t detailsz);
/* Stops the watches and frees the clients of referenced Secrets (after the
 * workers stopped). */
void op_credentials_stop(op_mgr *m);

/* Queues every CloudServer (manager.c): a token changed. */
void op_requeue_all(op_mgr *m);

/* API: reconcilers. Each does one pass for key and requeues it itself. */
void op_cloudserver_reconcile(op_mgr *m, const char *key);
void op_cloudserverset_reconcile(op_mgr *m, const char *key);
/* Resources. */
extern const csl_kube_resource op_res_cloudservers;
extern const csl_kube_resource op_res_cloudserversets;

#endif
