/* kube.h — a Kubernetes API client: configuration (kubeconfig as kubectl
 * reads it, or in-cluster), a pooled libcurl transport, REST verbs on any
 * group/version/resource, and API errors a caller can test.
 *
 * One idea: a csl_kube is shared by every thread of a program. It keeps a
 * small pool of curl easy handles (each reused across calls, so its
 * connections — HTTP/2 over TLS where the server offers it — stay open),
 * lends one per call and takes it back; DNS and TLS session caches are
 * shared between handles through a curl share handle (libcurl does not
 * support sharing the connection cache between concurrent threads).
 * Credentials that expire (exec plugins, rotated service-account token
 * files) are refreshed inside the client, never by callers.
 *
 * Threads: every csl_kube call is thread-safe (csl_kube_free excepted: call
 * it after the last call). Configs, credentials, errors and cJSON trees
 * belong to one thread at a time. See docs/lib/kube.md.
 *
 * Objects travel as cJSON trees: a call that returns a cJSON * gives the
 * caller ownership; arguments are borrowed. Errors fill a csl_kube_error the
 * caller provides (may be NULL) and the call returns NULL / -1. */
#ifndef CSL_KUBE_H
#define CSL_KUBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include "csl/buf.h"
#include "csl/metrics.h"

/* ---------------------------------------------------------------- config */

typedef struct csl_kube_exec {
    char *command;             /* NULL when the user has no exec plugin */
    char **args;               /* NULL-terminated */
    char **env;                /* NULL-terminated "NAME=value" */
    char *api_version;         /* client.authentication.k8s.io/v1 (or v1beta1) */
    bool interactive;          /* interactiveMode Always: refused (we have no tty) */
    bool provide_cluster_info; /* pass spec.cluster in KUBERNETES_EXEC_INFO */
    char *install_hint;        /* shown when the command cannot be found, or NULL */
} csl_kube_exec;

typedef struct csl_kube_config {
    char *server;          /* "https://127.0.0.1:6443" */
    char *tls_server_name; /* optional SNI/verify name */
    char *ca_file;         /* PEM path, or NULL */
    char *ca_data;         /* PEM bytes (base64-decoded), or NULL */
    size_t ca_data_len;
    char *cert_file, *cert_data; /* client certificate, file or PEM bytes */
    size_t cert_data_len;
    char *key_file, *key_data; /* client key, file or PEM bytes */
    size_t key_data_len;
    char *token;      /* static bearer token */
    char *token_file; /* re-read when it changes (rotation) */
    csl_kube_exec exec;
    bool insecure;      /* insecure-skip-tls-verify: set only when asked */
    char *namespace;    /* the context's namespace, else "default" */
    char *context_name; /* for messages */
    char *source;       /* the file the user came from, for messages */
} csl_kube_config;

/* API: config */

/* Loads a kubeconfig as kubectl does: `path` when given, else every file in
 * $KUBECONFIG (':'-separated; for each map key the first file that sets it
 * wins), else ~/.kube/config; then the context `context` (NULL: the
 * current-context). Relative file paths in a kubeconfig are relative to that
 * file's folder. On error returns -1 with err saying which file (and
 * file:line:col for YAML errors) and what is missing ("context \"x\" not
 * found in /home/a/.kube/config"), and *out untouched. */
int csl_kubeconfig_load(const char *path, const char *context, csl_kube_config *out, char *err,
                        size_t errsz);
/* In-cluster: KUBERNETES_SERVICE_HOST/PORT, the service-account CA, token
 * file and namespace under /var/run/secrets/kubernetes.io/serviceaccount
 * (root overridable for tests with $CSL_SERVICEACCOUNT_DIR). */
int csl_kube_incluster_config(csl_kube_config *out, char *err, size_t errsz);
/* Deep copy; 0, or -1 on allocation failure (dst then empty). */
int csl_kube_config_copy(csl_kube_config *dst, const csl_kube_config *src);
/* Frees every field and zeroes cfg; a zeroed config is fine. */
void csl_kube_config_free(csl_kube_config *cfg);

/* What an exec credential plugin gave us (PEM data is as printed, not
 * base64). expires_ms: wall-clock epoch ms from status.expirationTimestamp;
 * 0 when it never expires (until the server answers 401). */
typedef struct csl_kube_credential {
    char *token;
    char *cert_data;
    size_t cert_data_len;
    char *key_data;
    size_t key_data_len;
    int64_t expires_ms;
} csl_kube_credential;

/* Runs cfg->exec once: fork/exec with stdin /dev/null, the user's env
 * entries added, KUBERNETES_EXEC_INFO set to the ExecCredential request
 * (spec.interactive false; spec.cluster when provide_cluster_info). Kills
 * it after timeout_ms (<= 0: 60 s). Returns 0 with *out filled (free with
 * csl_kube_credential_free), or -1 with err naming the command: not found
 * (with the install hint), exit status and its stderr, timeout, bad JSON,
 * wrong apiVersion/kind, neither token nor certificate+key. Thread-safe. */
int csl_kube_exec_credential(const csl_kube_config *cfg, long timeout_ms, csl_kube_credential *out,
                             char *err, size_t errsz);
void csl_kube_credential_free(csl_kube_credential *c);

/* ---------------------------------------------------------------- errors */

typedef enum {
    CSL_KUBE_OK = 0,
    CSL_KUBE_NOT_FOUND,         /* 404 */
    CSL_KUBE_ALREADY_EXISTS,    /* 409 reason AlreadyExists */
    CSL_KUBE_CONFLICT,          /* 409 otherwise (stale resourceVersion) */
    CSL_KUBE_GONE,              /* 410 (expired resourceVersion) */
    CSL_KUBE_INVALID,           /* 422, with causes */
    CSL_KUBE_BAD_REQUEST,       /* 400 */
    CSL_KUBE_UNAUTHORIZED,      /* 401 */
    CSL_KUBE_FORBIDDEN,         /* 403 */
    CSL_KUBE_TOO_MANY_REQUESTS, /* 429, retry_after_s */
    CSL_KUBE_TIMEOUT,           /* 504, or the server's Timeout reason, or our own deadline */
    CSL_KUBE_SERVER_ERROR,      /* other 5xx */
    CSL_KUBE_TRANSPORT,         /* no HTTP answer: connect, TLS, reset */
    CSL_KUBE_DECODE,            /* an answer we could not read (bad JSON, too large) */
    CSL_KUBE_CONFIG,            /* credentials could not be obtained */
    CSL_KUBE_OTHER,
} csl_kube_code;

#define CSL_KUBE_MAX_CAUSES 8

typedef struct csl_kube_error {
    csl_kube_code code;
    int status;        /* HTTP status, 0 when none */
    char reason[64];   /* metav1.Status reason, e.g. "AlreadyExists" */
    char message[512]; /* for a person: method, path, and what the server said */
    int retry_after_s; /* from Retry-After / details.retryAfterSeconds; 0 none */
    size_t ncauses;
    struct {
        char field[128]; /* "spec.cpu" */
        char reason[64]; /* "FieldValueInvalid" */
        char message[256];
    } causes[CSL_KUBE_MAX_CAUSES];
} csl_kube_error;

/* API: errors */
const char *csl_kube_code_name(csl_kube_code c); /* "NotFound", … */
/* Decodes an HTTP status and a response body (a metav1.Status, or anything
 * else) into err. Never fails; a non-JSON body becomes the message. */
void csl_kube_error_decode(int status, const char *body, size_t len, csl_kube_error *err);
/* True for errors worth retrying as they are: 429, 5xx, timeouts, transport. */
bool csl_kube_error_retryable(const csl_kube_error *err);

/* ---------------------------------------------------------------- client */

typedef struct csl_kube csl_kube;

typedef struct csl_kube_options {
    const char *user_agent;  /* default "cloudserver-lab/<version>" */
    double qps;              /* client-side limit; 0 = off (the default) */
    int burst;               /* with qps; default 10 */
    long connect_timeout_ms; /* default 10000 */
    long timeout_ms;         /* whole request, non-watch; default 60000 */
    size_t max_response;     /* bytes; default 256 MiB; larger → DECODE */
    csl_metrics *metrics;    /* when set: rest_client_requests_total{code,method,host},
                                rest_client_request_duration_seconds{verb,host} */
    long exec_timeout_ms;    /* exec credential plugin; default 60000 */
} csl_kube_options;

/* Creates a client (copies what it needs from cfg). NULL with err on a bad
 * server URL or unreadable certificate files (named). */
csl_kube *csl_kube_new(const csl_kube_config *cfg, const csl_kube_options *opt, char *err,
                       size_t errsz);
void csl_kube_free(csl_kube *k);
/* The namespace of the config's context (or in-cluster namespace). */
const char *csl_kube_namespace(const csl_kube *k);

/* Counters since csl_kube_new, for tests and benchmarks: HTTP exchanges
 * (attempts, streams included) and TCP connections opened for them. */
typedef struct csl_kube_stats {
    uint64_t requests;
    uint64_t connects;
    uint64_t auth_refreshes; /* exec plugin runs and token file re-reads */
    uint64_t http2;          /* exchanges that went over HTTP/2 */
} csl_kube_stats;
void csl_kube_get_stats(csl_kube *k, csl_kube_stats *out);

/* A resource type: group "" is the core group (/api/v1). */
typedef struct csl_kube_resource {
    const char *group;    /* "cloudserver.dev", "" for core */
    const char *version;  /* "v1" */
    const char *resource; /* plural: "cloudservers" */
    bool namespaced;
} csl_kube_resource;

/* The raw call under everything else: method and path+query
 * ("/apis/…?limit=5"); content_type may be NULL when body is NULL. On an
 * HTTP answer returns its status and the body in *resp (reset first); on
 * no answer returns -1 with err (CSL_KUBE_TRANSPORT / CONFIG / DECODE).
 * A status ≥ 400 is NOT turned into an error here. */
int csl_kube_request(csl_kube *k, const char *method, const char *path, const char *content_type,
                     const char *body, size_t len, csl_buf *resp, csl_kube_error *err);

/* Appends the path of a collection or an object: ns ignored for cluster
 * resources; name and subresource may be NULL. Values are URL-escaped. */
void csl_kube_path(csl_buf *out, const csl_kube_resource *res, const char *ns, const char *name,
                   const char *subresource);

/* API: REST. subresource: NULL, "status" or "scale". Every call is
 * thread-safe; on failure it returns NULL / -1 with err filled, on success
 * err->code is CSL_KUBE_OK and err->status the HTTP status. A 401 with a
 * refreshable credential (exec plugin, token file) refreshes it and, when
 * it changed, retries once. */
cJSON *csl_kube_get(csl_kube *k, const csl_kube_resource *res, const char *ns, const char *name,
                    const char *subresource, csl_kube_error *err);

typedef struct csl_kube_list_opts {
    const char *label_selector;
    const char *field_selector;
    long limit; /* 0: no limit */
    const char *continue_token;
    const char *resource_version;
    const char *resource_version_match; /* "NotOlderThan" | "Exact" */
} csl_kube_list_opts;

/* One page: the List object as the server sent it (with metadata.continue).
 * ns NULL or "" on a namespaced resource lists every namespace.
 * resource_version(_match) are not sent beside a continue token. */
cJSON *csl_kube_list(csl_kube *k, const csl_kube_resource *res, const char *ns,
                     const csl_kube_list_opts *opt, csl_kube_error *err);
/* Every page, following continue (opt->limit per page, default 500): one
 * List whose items hold them all and whose metadata.resourceVersion is the
 * first page's. A 410 mid-way restarts from the first page once. */
cJSON *csl_kube_list_all(csl_kube *k, const csl_kube_resource *res, const char *ns,
                         const csl_kube_list_opts *opt, csl_kube_error *err);

/* POST into ns; when ns is NULL or "", into obj's metadata.namespace, else
 * the client's namespace (ignored for cluster resources). Returns the
 * object as stored. */
cJSON *csl_kube_create(csl_kube *k, const csl_kube_resource *res, const char *ns, const cJSON *obj,
                       csl_kube_error *err);
/* PUT; the name comes from obj's metadata.name (namespace as for create);
 * obj must carry metadata.resourceVersion for optimistic concurrency (409
 * Conflict). */
cJSON *csl_kube_update(csl_kube *k, const csl_kube_resource *res, const char *ns, const cJSON *obj,
                       const char *subresource, csl_kube_error *err);

typedef enum {
    CSL_PATCH_MERGE = 0, /* application/merge-patch+json */
    CSL_PATCH_JSON,      /* application/json-patch+json */
    CSL_PATCH_APPLY,     /* application/apply-patch+yaml (server-side apply) */
} csl_kube_patch_type;

typedef struct csl_kube_patch_opts {
    const char *field_manager; /* required for APPLY */
    bool force;                /* APPLY: take ownership of conflicting fields */
} csl_kube_patch_opts;

cJSON *csl_kube_patch(csl_kube *k, const csl_kube_resource *res, const char *ns, const char *name,
                      const char *subresource, csl_kube_patch_type type, const char *patch,
                      const csl_kube_patch_opts *opt, csl_kube_error *err);

#define CSL_KUBE_GRACE_IMMEDIATE (-1L)

typedef struct csl_kube_delete_opts {
    const char *propagation_policy; /* "Foreground" | "Background" | "Orphan" */
    const char *precondition_uid;
    const char *precondition_rv;
    /* 0: the server's default (so a zeroed struct is safe); > 0: seconds;
     * CSL_KUBE_GRACE_IMMEDIATE: delete at once (gracePeriodSeconds 0). */
    long grace_period_s;
} csl_kube_delete_opts;

/* Sends a DeleteOptions body (opt NULL: none of the options). Returns 0
 * (deleted or deletion started), or -1 with err (NotFound too). */
int csl_kube_delete(csl_kube *k, const csl_kube_resource *res, const char *ns, const char *name,
                    const csl_kube_delete_opts *opt, csl_kube_error *err);

/* ---------------------------------------------------------------- streaming */

/* Calls on_data for each chunk of the body of a long request (a watch)
 * until the server ends it, on_data returns false, *stop becomes true, or no
 * byte arrives for stall_timeout_ms (then err CSL_KUBE_TIMEOUT, "stalled").
 * Returns the HTTP status (a non-2xx body is decoded into err and on_data
 * is not called), or -1 on transport errors and stalls. *stop is checked
 * before the request, with every chunk and at least once a second (curl's
 * progress callback) with an atomic load, so another thread may set it with
 * __atomic_store_n; a stop before the response headers returns 0. There
 * is no overall timeout; stall_timeout_ms <= 0 disables stall detection.
 * Chunk boundaries are wherever the network put them: a JSON line may be
 * split across calls or several may come in one. A 401 marks refreshable
 * credentials stale so the next call gets fresh ones (no retry here). */
int csl_kube_stream(csl_kube *k, const char *path,
                    bool (*on_data)(const char *p, size_t n, void *ctx), void *ctx,
                    const volatile int *stop, long stall_timeout_ms, csl_kube_error *err);

/* ---------------------------------------------------------------- helpers */

/* Borrowed pointers into obj, or NULL: metadata.name / namespace / uid /
 * resourceVersion. */
const char *csl_kube_obj_name(const cJSON *obj);
const char *csl_kube_obj_namespace(const cJSON *obj);
const char *csl_kube_obj_uid(const cJSON *obj);
const char *csl_kube_obj_rv(const cJSON *obj);
/* "ns/name" or "name" for cluster objects, into out. */
void csl_kube_obj_key(const cJSON *obj, char *out, size_t outsz);

#endif
