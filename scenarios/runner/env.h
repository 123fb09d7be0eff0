/* env.h — where scenarios run, and the processes they drive.
 *
 * sr_env is the run-wide target: on --local the runner's own control
 * plane (kind/local/up.sh in a directory of the run, CRDs applied, torn
 * down at the end), or a cluster named by a kubeconfig where the operator
 * is deployed. sr_stack is one scenario's world: its namespace, its
 * credentials Secret, its own mockcloud and its own operator replica(s) on
 * loopback ports (local), so scenarios run side by side without sharing
 * faults. Every process is started by us, recorded by PID, and stopped by
 * that PID; children get PR_SET_PDEATHSIG so none outlives the runner. */
#ifndef SR_ENV_H
#define SR_ENV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <cjson/cJSON.h>
#include "csl/buf.h"
#include "csl/kube.h"

typedef struct sr_env_options {
    bool local;              /* default true */
    const char *kubeconfig;  /* !local */
    const char *context;     /* may be NULL */
    const char *work_dir;    /* the run's dir for the plane, logs, files (created) */
    const char *repo_dir;    /* where kind/local/ and config/crd/bases are; default "." */
    const char *bin_dir;     /* cloudserver-operator and mockcloud; default "bin" */
    const char *operator_cmd;   /* local: a shell command replacing bin/cloudserver-operator
                                   (the runner appends its flags); NULL: the default */
    const char *break_mode;     /* local: CSL_OPERATOR_BREAK for the operator; NULL none */
    const char *mockcloud_url;  /* !local: the mockcloud every scenario uses */
    const char *mockcloud_admin_token; /* !local; may be NULL */
    const char *mockcloud_token;       /* !local: the token the operator's Secret holds */
    const char *operator_namespace;    /* !local: where the operator's pods are */
    const char *operator_selector;     /* !local: their label selector */
    const char *operator_metrics_url;  /* !local: may be NULL (CPU/RSS SLOs then SKIP) */
    bool keep;                         /* leave the plane and namespaces up (debugging) */
} sr_env_options;

typedef struct sr_env sr_env;
typedef struct sr_stack sr_stack;

typedef struct sr_stack_options {
    const char *scenario;   /* for names and logs */
    uint64_t seed;
    double time_scale;      /* ≥ 1; ≠ 1 runs the operator under libfaketime */
    const cJSON *timings;   /* PUT /_mock/timings body, or NULL */
    const cJSON *capacity;  /* PUT /_mock/capacity body, or NULL */
    char *const *mock_args;
    size_t n_mock_args;
    int replicas;           /* 1..3 */
    char *const *operator_args;
    size_t n_operator_args;
} sr_stack_options;

/* API: the run-wide target */

/* Brings the target up (local: plane + CRDs; kubeconfig: connects and
 * checks the CRDs are installed). NULL with err saying what failed. */
sr_env *sr_env_up(const sr_env_options *opt, char *err, size_t errsz);
/* Tears down what sr_env_up started (unless keep). */
void sr_env_down(sr_env *e);
bool sr_env_is_local(const sr_env *e);
const char *sr_env_kubeconfig(const sr_env *e); /* path */
const char *sr_env_context(const sr_env *e);    /* may be NULL */
/* A new client for the caller (one per thread is the simple rule). */
csl_kube *sr_env_kube_new(sr_env *e, char *err, size_t errsz);
/* Local only: restarts kube-apiserver (kind/local/restart-apiserver.sh) and
 * waits for /readyz. -1 with err otherwise. */
int sr_env_restart_apiserver(sr_env *e, char *err, size_t errsz);

/* API: one scenario's world */

/* Creates the namespace (name chosen here: sr-<scenario>-<4 hex>), the
 * credentials Secret, starts mockcloud (local) and the operator
 * replica(s), and waits until they are ready. NULL with err. */
sr_stack *sr_stack_up(sr_env *e, const sr_stack_options *opt, char *err, size_t errsz);
/* Stops the operators then mockcloud (SIGTERM, then SIGKILL after a bound),
 * deletes the namespace (waiting for it unless keep). Saves each process's
 * stderr into the work dir (<scenario>-operator-N.log, -mockcloud.log). */
void sr_stack_down(sr_stack *s);
const char *sr_stack_namespace(const sr_stack *s);
const char *sr_stack_mock_url(const sr_stack *s);      /* "http://127.0.0.1:PORT" */
const char *sr_stack_mock_admin_token(const sr_stack *s); /* may be NULL */
const char *sr_stack_log_dir(const sr_stack *s);

/* A mockcloud request (control API or /v1, with the right token: admin
 * token for /_mock/, the cloud token for /v1). body may be NULL. Returns the
 * HTTP status and, when reply is not NULL, the parsed JSON body (NULL when
 * empty or not JSON); -1 with err when there was no answer. Thread-safe. */
int sr_mock_request(sr_stack *s, const char *method, const char *path, const cJSON *body,
                    cJSON **reply, char *err, size_t errsz);

/* Operator replicas. action: "kill" (SIGKILL), "stop" (SIGTERM, wait for exit
 * 0), "start", "restart" (kill + start). replica: 0..replicas-1, or -1 for
 * the current leader (by the Lease's holderIdentity). 0 or -1 with err. */
int sr_stack_operator(sr_stack *s, const char *action, int replica, char *err, size_t errsz);
int sr_stack_replicas(const sr_stack *s);
/* The replica holding the Lease, or -1 (none / unknown). */
int sr_stack_leader(sr_stack *s);
/* Whether replica r is running now (local); true when unknown. */
bool sr_stack_replica_running(sr_stack *s, int r);
/* Appends replica r's /metrics text to out (r = -1: the leader, else any
 * running one). 0, or -1 with err (not running, no answer). */
int sr_stack_metrics(sr_stack *s, int r, csl_buf *out, char *err, size_t errsz);
/* The environment for an exec op: KUBECONFIG, CSL_NAMESPACE,
 * CSL_MOCKCLOUD_URL, CSL_MOCKCLOUD_ADMIN_TOKEN appended as "K=V" strings to
 * a NULL-terminated copy of environ (caller frees with sr_env_free_environ). */
char **sr_stack_environ(sr_stack *s, const char *scenario);
void sr_env_free_environ(char **envp);

#endif
