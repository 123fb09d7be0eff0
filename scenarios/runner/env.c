/* env.c — where scenarios run: the run-wide target (the runner's own local
 * plane, or a cluster named by a kubeconfig) and each scenario's stack (a
 * namespace, its credentials Secret, its own mockcloud and operator
 * replicas on loopback ports).
 *
 * One idea: the runner owns every process it starts and knows each by PID
 * alone. Children are forked by env_proc's spawner thread (so PDEATHSIG
 * means "when the runner goes"), each in a process group of its own, and
 * are signalled and reaped only through the PIDs recorded here; a stack's
 * replica table is guarded by its mutex so the monitor, the engine and an
 * operator step may look at it from different threads. In kubeconfig mode
 * the same calls act on the deployed operator's pods through the API. */
#include "env.h"

#include <curl/curl.h>
#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "csl/clock.h"
#include "csl/log.h"
#include "csl/yaml.h"
#include "env_proc.h"

#define SR_MAX_REPLICAS 3
#define PLANE_UP_TIMEOUT_MS (20L * 60 * 1000) /* a cold build of the plane takes ~5 min */
#define PLANE_SCRIPT_TIMEOUT_MS (3L * 60 * 1000)
#define CRD_ESTABLISHED_TIMEOUT_MS 30000
#define MOCK_START_TIMEOUT_MS 15000
#define MOCK_STOP_GRACE_MS 15000
#define OPERATOR_START_TIMEOUT_MS 60000 /* sanitizer builds on a loaded machine */
#define OPERATOR_STOP_GRACE_MS 45000    /* in-flight passes get 30 s to finish */
#define NAMESPACE_GONE_TIMEOUT_MS 60000
#define HTTP_TIMEOUT_MS 10000
#define SECRET_NAME "cloud-credentials"
#define DEFAULT_LEASE "cloudserver-operator-leader"

static const csl_kube_resource R_NS = {"", "v1", "namespaces", false};
static const csl_kube_resource R_SECRET = {"", "v1", "secrets", true};
static const csl_kube_resource R_POD = {"", "v1", "pods", true};
static const csl_kube_resource R_LEASE = {"coordination.k8s.io", "v1", "leases", true};
static const csl_kube_resource R_CRD = {"apiextensions.k8s.io", "v1", "customresourcedefinitions",
                                        false};
static const csl_kube_resource R_CS = {"cloudserver.dev", "v1", "cloudservers", true};
static const csl_kube_resource R_CSS = {"cloudserver.dev", "v1", "cloudserversets", true};

static const char *const required_crds[] = {"cloudservers.cloudserver.dev",
                                            "cloudserversets.cloudserver.dev"};

struct sr_env {
    bool local, keep, plane_started;
    char *work_dir;    /* absolute */
    char *repo_dir;    /* absolute */
    char *bin_dir;     /* absolute */
    char *cluster_dir; /* local: <work_dir>/cluster */
    char *kubeconfig;  /* absolute path, or NULL (kubeconfig mode: $KUBECONFIG/~/.kube/config) */
    char *context;
    char *operator_cmd, *break_mode;
    char *mock_url, *mock_admin, *mock_token;
    char *op_ns, *op_selector, *op_metrics_url;
    char faketime_lib[PATH_MAX]; /* "" when libfaketime is not installed */
    csl_kube_config cfg;
    csl_kube *kube; /* the environment's own calls; thread-safe */
    sr_ep_spawner *sp;
};

typedef struct sr_replica {
    pid_t pid;    /* our child; 0 when not running */
    pid_t op_pid; /* the ready file's pid: the operator itself (differs under a shell) */
    int starts;
    int last_exit; /* exit status of the last run, -1 unknown */
    long log_off;  /* where this run's output begins in the log */
    char log_path[PATH_MAX];
    char ready_path[PATH_MAX];
    char metrics[128];  /* "http://127.0.0.1:PORT" */
    char identity[256]; /* leader-election identity from this run's log */
} sr_replica;

struct sr_stack {
    sr_env *e;
    char *scenario;
    char ns[64];
    char mock_url[256];
    char *admin_token; /* may be NULL (kubeconfig mode without one) */
    char *token;       /* the cloud token the Secret holds; may be NULL */
    pid_t mock_pid;
    char mock_log[PATH_MAX];
    int replicas;
    double time_scale;
    char lease_name[128];
    char **op_args; /* the scenario's extra operator flags */
    size_t n_op_args;
    pthread_mutex_t mu;  /* rep[] */
    pthread_mutex_t act; /* one operator action at a time */
    sr_replica rep[SR_MAX_REPLICAS];
};

/* ---------------------------------------------------------------- helpers */

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void random_hex(char *out, size_t nhex)
{
    unsigned char b[32];
    size_t nb = (nhex + 1) / 2;
    if (nb > sizeof b) nb = sizeof b;
    if (getrandom(b, nb, 0) != (ssize_t)nb) {
        /* getrandom on Linux ≥ 3.17 does not fail for ≤ 256 bytes; keep going regardless. */
        for (size_t i = 0; i < nb; i++) b[i] = (unsigned char)(rand() ^ (int)sr_ep_now_ms());
    }
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < nhex && i / 2 < nb; i++)
        out[i] = hex[(i % 2 ? b[i / 2] : b[i / 2] >> 4) & 15];
    out[nhex] = '\0';
}

static int mkdir_p(const char *path)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp) return -1;
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    return mkdir(tmp, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

static char *abs_path(const char *p)
{
    char buf[PATH_MAX];
    if (realpath(p, buf)) return strdup(buf);
    return strdup(p);
}

static char *read_small_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    char *buf = malloc(65536);
    size_t n = buf ? fread(buf, 1, 65535, f) : 0;
    fclose(f);
    if (buf) buf[n] = '\0';
    return buf;
}

/* Appends " (last lines of LOG: …)" to err, for start-up failures. */
static void add_log_tail(char *err, size_t errsz, const char *log)
{
    size_t l = strlen(err);
    if (l + 64 >= errsz) return;
    char *tail = sr_ep_file_tail(log, 600);
    snprintf(err + l, errsz - l, " (log %s%s%s)", log, tail && *tail ? "; last lines:\n" : "",
             tail ? tail : "");
    free(tail);
}

static void kerr(char *err, size_t errsz, const char *what, const csl_kube_error *ke)
{
    snprintf(err, errsz, "%s: %s (%s)", what, ke->message, csl_kube_code_name(ke->code));
}

/* ---------------------------------------------------------------- HTTP */

static size_t on_body(char *data, size_t sz, size_t nm, void *ud)
{
    return csl_buf_append(ud, data, sz * nm) ? sz * nm : 0;
}

/* One exchange with a fresh handle (loopback connections are cheap; no
 * shared state means no locking). Returns the HTTP status, or -1 with err. */
static int http_do(const char *method, const char *url, const char *bearer, const char *body,
                   csl_buf *resp, char *err, size_t errsz)
{
    CURL *c = curl_easy_init();
    if (!c) {
        snprintf(err, errsz, "cannot make a curl handle");
        return -1;
    }
    struct curl_slist *h = NULL;
    char line[600];
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)HTTP_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, resp);
    if (strcmp(method, "GET") != 0) curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
        h = curl_slist_append(h, "Content-Type: application/json");
    } else if (strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
               strcmp(method, "PATCH") == 0) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L);
    }
    h = curl_slist_append(h, "Expect:");
    if (bearer && *bearer) {
        snprintf(line, sizeof line, "Authorization: Bearer %s", bearer);
        h = curl_slist_append(h, line);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    CURLcode cc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (cc != CURLE_OK) {
        snprintf(err, errsz, "%s %s: %s", method, url, curl_easy_strerror(cc));
        return -1;
    }
    return (int)status;
}

/* ---------------------------------------------------------------- the plane */

static int run_plane_script(sr_env *e, const char *script, const char *arg, long timeout_ms,
                            char *err, size_t errsz)
{
    char path[PATH_MAX], log[PATH_MAX], dirvar[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/kind/local/%s", e->repo_dir, script);
    snprintf(log, sizeof log, "%s/plane.log", e->work_dir);
    snprintf(dirvar, sizeof dirvar, "CSL_CLUSTER_DIR=%s", e->cluster_dir);
    if (access(path, X_OK) != 0) {
        snprintf(err, errsz, "%s: %s (is --repo-dir the repository root?)", path, strerror(errno));
        return -1;
    }
    char *set[] = {dirvar};
    char **envp = sr_ep_environ_with(set, 1);
    char *argv[] = {path, (char *)arg, NULL};
    int st = envp ? sr_ep_run(e->sp, argv, envp, log, timeout_ms, err, errsz) : -1;
    sr_ep_environ_free(envp);
    if (st == 0) return 0;
    if (st > 0) snprintf(err, errsz, "%s exited with status %d", path, st);
    add_log_tail(err, errsz, log);
    return -1;
}

/* Whether the CRD is Established; *since_ms = when it became so (epoch ms,
 * 0 when the condition has no readable time). */
static bool crd_established(const cJSON *crd, int64_t *since_ms)
{
    const cJSON *conds = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(crd, "status"), "conditions");
    const cJSON *c;
    *since_ms = 0;
    cJSON_ArrayForEach(c, conds)
    {
        const char *t = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "type"));
        const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "status"));
        if (t && s && strcmp(t, "Established") == 0 && strcmp(s, "True") == 0) {
            const char *ltt =
                cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "lastTransitionTime"));
            if (!ltt || csl_rfc3339_parse(ltt, since_ms) != 0) *since_ms = 0;
            return true;
        }
    }
    return false;
}

/* Server-side applies every document of every *.yaml in config/crd/bases. */
static int apply_crds(sr_env *e, char *err, size_t errsz)
{
    char pattern[PATH_MAX];
    snprintf(pattern, sizeof pattern, "%s/config/crd/bases/*.yaml", e->repo_dir);
    glob_t g;
    if (glob(pattern, 0, NULL, &g) != 0) {
        snprintf(err, errsz, "no CRDs found at %s", pattern);
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < g.gl_pathc && rc == 0; i++) {
        csl_yaml_err ye;
        csl_yaml *y = csl_yaml_load_file(g.gl_pathv[i], &ye);
        if (!y) {
            csl_yaml_err_format(&ye, err, errsz);
            rc = -1;
            break;
        }
        for (size_t d = 0; d < csl_yaml_count(y) && rc == 0; d++) {
            const cJSON *doc = csl_yaml_doc(y, d);
            if (!cJSON_IsObject(doc)) continue;
            char *body = cJSON_PrintUnformatted(doc);
            csl_kube_patch_opts po = {.field_manager = "scenario-runner", .force = true};
            csl_kube_error ke;
            cJSON *r = body ? csl_kube_patch(e->kube, &R_CRD, NULL, csl_kube_obj_name(doc), NULL,
                                             CSL_PATCH_APPLY, body, &po, &ke)
                            : NULL;
            if (!r) {
                char what[PATH_MAX + 128];
                snprintf(what, sizeof what, "applying CRD %s from %s", csl_kube_obj_name(doc),
                         g.gl_pathv[i]);
                if (body)
                    kerr(err, errsz, what, &ke);
                else
                    snprintf(err, errsz, "%s: out of memory", what);
                rc = -1;
            }
            cJSON_Delete(r);
            free(body);
        }
        csl_yaml_free(y);
    }
    globfree(&g);
    return rc;
}

/* Each required CRD exists (and, with wait_ms > 0, is Established within
 * it). The error names the missing one and how to install it. */
static int check_crds(sr_env *e, long wait_ms, char *err, size_t errsz)
{
    int64_t end = sr_ep_now_ms() + wait_ms, newest = 0;
    for (size_t i = 0; i < sizeof required_crds / sizeof required_crds[0]; i++) {
        for (;;) {
            csl_kube_error ke;
            cJSON *crd = csl_kube_get(e->kube, &R_CRD, NULL, required_crds[i], NULL, &ke);
            int64_t since = 0;
            bool ok = crd && crd_established(crd, &since);
            if (ok && since > newest) newest = since;
            cJSON_Delete(crd);
            if (ok) break;
            if (!crd && ke.code != CSL_KUBE_NOT_FOUND) {
                kerr(err, errsz, "reading the CRDs", &ke);
                return -1;
            }
            if (sr_ep_now_ms() >= end) {
                if (!crd)
                    snprintf(err, errsz,
                             "the cluster has no CRD %s: install the CRDs first (`kubectl apply "
                             "--server-side -f config/crd/bases/`, or `make crds`)",
                             required_crds[i]);
                else
                    snprintf(err, errsz, "CRD %s is not Established%s", required_crds[i],
                             wait_ms > 0 ? " after 30 s" : "");
                return -1;
            }
            sr_ep_sleep_ms(100);
        }
    }
    /* kube-apiserver holds every create of a custom resource for 2 s while
     * its CRD became Established less than 2 s ago (by the condition's
     * lastTransitionTime; an HA safety delay). On the local plane the CRDs
     * were just applied: wait that out here, once, rather than in the first
     * apply step of every scenario. */
    if (wait_ms > 0 && newest > 0) {
        int64_t left = newest + 2000 - csl_wall_ms();
        if (left > 0) sr_ep_sleep_ms((long)(left > 2000 ? 2000 : left));
    }
    return 0;
}

static void find_faketime(sr_env *e)
{
    const char *over = getenv("CSL_FAKETIME_LIB");
    if (over && *over) {
        snprintf(e->faketime_lib, sizeof e->faketime_lib, "%s", over);
        return;
    }
    /* The MT variant: the operator is multi-threaded. Debian puts it under
     * the multiarch lib dir; a source install under /usr/local. */
    static const char *const patterns[] = {"/usr/lib/*/faketime/libfaketimeMT.so.1",
                                           "/usr/lib/faketime/libfaketimeMT.so.1",
                                           "/usr/local/lib/faketime/libfaketimeMT.so.1"};
    for (size_t i = 0; i < sizeof patterns / sizeof patterns[0]; i++) {
        glob_t g;
        if (glob(patterns[i], 0, NULL, &g) == 0 && g.gl_pathc > 0) {
            snprintf(e->faketime_lib, sizeof e->faketime_lib, "%s", g.gl_pathv[0]);
            globfree(&g);
            return;
        }
        globfree(&g);
    }
    e->faketime_lib[0] = '\0';
}

static void env_free(sr_env *e)
{
    if (!e) return;
    csl_kube_free(e->kube);
    csl_kube_config_free(&e->cfg);
    sr_ep_spawner_free(e->sp);
    free(e->work_dir);
    free(e->repo_dir);
    free(e->bin_dir);
    free(e->cluster_dir);
    free(e->kubeconfig);
    free(e->context);
    free(e->operator_cmd);
    free(e->break_mode);
    free(e->mock_url);
    free(e->mock_admin);
    free(e->mock_token);
    free(e->op_ns);
    free(e->op_selector);
    free(e->op_metrics_url);
    free(e);
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

sr_env *sr_env_up(const sr_env_options *opt, char *err, size_t errsz)
{
    pthread_once(&curl_once, curl_init_once);
    sr_env *e = calloc(1, sizeof *e);
    if (!e) {
        snprintf(err, errsz, "out of memory");
        return NULL;
    }
    e->local = opt->local;
    e->keep = opt->keep;
    const char *wd = opt->work_dir ? opt->work_dir : ".";
    if (mkdir_p(wd) != 0) {
        snprintf(err, errsz, "cannot create the work dir %s: %s", wd, strerror(errno));
        goto fail;
    }
    e->work_dir = abs_path(wd);
    e->repo_dir = abs_path(opt->repo_dir ? opt->repo_dir : ".");
    e->bin_dir = abs_path(opt->bin_dir ? opt->bin_dir : "bin");
    e->context = dup_or_null(opt->context);
    e->operator_cmd = opt->operator_cmd && *opt->operator_cmd ? strdup(opt->operator_cmd) : NULL;
    e->break_mode = opt->break_mode && *opt->break_mode ? strdup(opt->break_mode) : NULL;
    e->mock_url = dup_or_null(opt->mockcloud_url);
    e->mock_admin = dup_or_null(opt->mockcloud_admin_token);
    e->mock_token = dup_or_null(opt->mockcloud_token);
    e->op_ns = dup_or_null(opt->operator_namespace);
    e->op_selector = dup_or_null(opt->operator_selector);
    e->op_metrics_url = dup_or_null(opt->operator_metrics_url);
    if (!e->work_dir || !e->repo_dir || !e->bin_dir) {
        snprintf(err, errsz, "out of memory");
        goto fail;
    }
    find_faketime(e);
    e->sp = sr_ep_spawner_new(err, errsz);
    if (!e->sp) goto fail;

    if (e->local) {
        const char *progs[] = {"mockcloud", e->operator_cmd ? NULL : "cloudserver-operator"};
        for (size_t i = 0; i < 2; i++) {
            char p[PATH_MAX];
            if (!progs[i]) continue;
            snprintf(p, sizeof p, "%s/%s", e->bin_dir, progs[i]);
            if (access(p, X_OK) != 0) {
                snprintf(err, errsz,
                         "%s: %s (build with `make`, or point --bin-dir at the programs)", p,
                         strerror(errno));
                goto fail;
            }
        }
        size_t l = strlen(e->work_dir) + 32;
        e->cluster_dir = malloc(l);
        e->kubeconfig = malloc(l);
        if (!e->cluster_dir || !e->kubeconfig) {
            snprintf(err, errsz, "out of memory");
            goto fail;
        }
        snprintf(e->cluster_dir, l, "%s/cluster", e->work_dir);
        snprintf(e->kubeconfig, l, "%s/cluster/kubeconfig", e->work_dir);
        csl_log(CSL_LOG_INFO, "starting the local control plane", "dir", e->cluster_dir, NULL);
        e->plane_started = true;
        if (run_plane_script(e, "up.sh", NULL, PLANE_UP_TIMEOUT_MS, err, errsz) != 0) goto fail;
    } else {
        if (!e->mock_url || !*e->mock_url) {
            snprintf(err, errsz,
                     "--kubeconfig needs --mockcloud-url (the mockcloud the deployed "
                     "operator talks to, e.g. a port-forward to it)");
            goto fail;
        }
        e->kubeconfig = opt->kubeconfig ? abs_path(opt->kubeconfig) : NULL;
    }
    if (csl_kubeconfig_load(e->kubeconfig, e->context, &e->cfg, err, errsz) != 0) goto fail;
    csl_kube_options ko = {.user_agent = "scenario-runner"};
    e->kube = csl_kube_new(&e->cfg, &ko, err, errsz);
    if (!e->kube) goto fail;
    if (e->local) {
        if (apply_crds(e, err, errsz) != 0) goto fail;
        if (check_crds(e, CRD_ESTABLISHED_TIMEOUT_MS, err, errsz) != 0) goto fail;
    } else if (check_crds(e, 0, err, errsz) != 0) {
        goto fail;
    }
    return e;
fail:
    sr_env_down(e);
    return NULL;
}

void sr_env_down(sr_env *e)
{
    if (!e) return;
    if (e->local && e->plane_started && !e->keep && e->sp) {
        char err[1024];
        if (run_plane_script(e, "down.sh", NULL, PLANE_SCRIPT_TIMEOUT_MS, err, sizeof err) != 0)
            csl_log(CSL_LOG_WARN, "stopping the local control plane failed", "error", err, NULL);
    } else if (e->local && e->plane_started && e->keep) {
        csl_log(CSL_LOG_INFO, "--keep: the local control plane stays up", "kubeconfig",
                e->kubeconfig, "stop it with", "CSL_CLUSTER_DIR=<dir> kind/local/down.sh", "dir",
                e->cluster_dir, NULL);
    }
    env_free(e);
}

bool sr_env_is_local(const sr_env *e)
{
    return e->local;
}

const char *sr_env_kubeconfig(const sr_env *e)
{
    return e->kubeconfig ? e->kubeconfig : e->cfg.source;
}

const char *sr_env_context(const sr_env *e)
{
    return e->context;
}

csl_kube *sr_env_kube_new(sr_env *e, char *err, size_t errsz)
{
    csl_kube_options ko = {.user_agent = "scenario-runner"};
    return csl_kube_new(&e->cfg, &ko, err, errsz);
}

int sr_env_restart_apiserver(sr_env *e, char *err, size_t errsz)
{
    if (!e->local) {
        snprintf(err, errsz, "restarting the API server needs --local (the runner's own plane)");
        return -1;
    }
    return run_plane_script(e, "restart-apiserver.sh", NULL, PLANE_SCRIPT_TIMEOUT_MS, err, errsz);
}

/* ---------------------------------------------------------------- namespaces */

static int create_namespace(sr_env *e, const char *ns, char *err, size_t errsz)
{
    cJSON *obj = cJSON_CreateObject();
    cJSON_AddStringToObject(obj, "apiVersion", "v1");
    cJSON_AddStringToObject(obj, "kind", "Namespace");
    cJSON *md = cJSON_AddObjectToObject(obj, "metadata");
    cJSON_AddStringToObject(md, "name", ns);
    cJSON *labels = cJSON_AddObjectToObject(md, "labels");
    cJSON_AddStringToObject(labels, "app.kubernetes.io/managed-by", "scenario-runner");
    csl_kube_error ke;
    cJSON *r = csl_kube_create(e->kube, &R_NS, NULL, obj, &ke);
    cJSON_Delete(obj);
    if (!r) {
        char what[128];
        snprintf(what, sizeof what, "creating namespace %s", ns);
        kerr(err, errsz, what, &ke);
        return -1;
    }
    cJSON_Delete(r);
    return 0;
}

static int create_secret(sr_env *e, const char *ns, const char *token, char *err, size_t errsz)
{
    cJSON *obj = cJSON_CreateObject();
    cJSON_AddStringToObject(obj, "apiVersion", "v1");
    cJSON_AddStringToObject(obj, "kind", "Secret");
    cJSON *md = cJSON_AddObjectToObject(obj, "metadata");
    cJSON_AddStringToObject(md, "name", SECRET_NAME);
    cJSON_AddStringToObject(md, "namespace", ns);
    cJSON_AddStringToObject(obj, "type", "Opaque");
    cJSON *sd = cJSON_AddObjectToObject(obj, "stringData");
    cJSON_AddStringToObject(sd, "token", token);
    csl_kube_error ke;
    cJSON *r = csl_kube_create(e->kube, &R_SECRET, ns, obj, &ke);
    cJSON_Delete(obj);
    if (!r) {
        kerr(err, errsz, "creating the credentials Secret", &ke);
        return -1;
    }
    cJSON_Delete(r);
    return 0;
}

/* Removes the finalizers of every object of res in ns; returns how many
 * objects had some (-1 when the list failed). */
static int strip_finalizers(sr_env *e, const csl_kube_resource *res, const char *ns)
{
    csl_kube_error ke;
    cJSON *list = csl_kube_list_all(e->kube, res, ns, NULL, &ke);
    if (!list) return ke.code == CSL_KUBE_NOT_FOUND ? 0 : -1;
    int n = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(list, "items"))
    {
        const cJSON *fin = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(it, "metadata"), "finalizers");
        if (cJSON_GetArraySize(fin) == 0) continue;
        cJSON *r = csl_kube_patch(e->kube, res, ns, csl_kube_obj_name(it), NULL, CSL_PATCH_MERGE,
                                  "{\"metadata\":{\"finalizers\":null}}", NULL, &ke);
        if (r) n++;
        cJSON_Delete(r);
    }
    cJSON_Delete(list);
    return n;
}

/* What the namespace controller would do, for planes that have none (the
 * local plane): delete the namespace's content of the kinds scenarios make,
 * then clear spec.finalizers so the namespace itself goes. */
static void finalize_namespace(sr_env *e, const char *ns)
{
    static const csl_kube_resource content[] = {
        {"cloudserver.dev", "v1", "cloudservers", true},
        {"cloudserver.dev", "v1", "cloudserversets", true},
        {"", "v1", "configmaps", true},
        {"", "v1", "secrets", true},
        {"", "v1", "events", true},
        {"", "v1", "pods", true},
        {"", "v1", "serviceaccounts", true},
        {"", "v1", "persistentvolumeclaims", true},
        {"coordination.k8s.io", "v1", "leases", true},
        {"apps", "v1", "deployments", true},
        {"apps", "v1", "replicasets", true},
        {"apps", "v1", "statefulsets", true},
        {"batch", "v1", "jobs", true},
    };
    for (size_t i = 0; i < sizeof content / sizeof content[0]; i++) {
        csl_buf path = CSL_BUF_INIT, resp = CSL_BUF_INIT;
        csl_kube_path(&path, &content[i], ns, NULL, NULL);
        csl_kube_error ke;
        /* DELETE on a collection is deletecollection; failures (a kind the
         * server does not serve) leave that kind to the finalize below. */
        csl_kube_request(e->kube, "DELETE", csl_buf_str(&path), NULL, NULL, 0, &resp, &ke);
        csl_buf_free(&path);
        csl_buf_free(&resp);
    }
    csl_kube_error ke;
    cJSON *obj = csl_kube_get(e->kube, &R_NS, NULL, ns, NULL, &ke);
    if (!obj) return;
    cJSON *spec = cJSON_GetObjectItemCaseSensitive(obj, "spec");
    if (spec) cJSON_ReplaceItemInObjectCaseSensitive(spec, "finalizers", cJSON_CreateArray());
    cJSON *r = csl_kube_update(e->kube, &R_NS, NULL, obj, "finalize", &ke);
    if (!r)
        csl_log(CSL_LOG_WARN, "finalizing the namespace failed", "namespace", ns, "error",
                ke.message, NULL);
    cJSON_Delete(r);
    cJSON_Delete(obj);
}

static bool namespace_gone(sr_env *e, const char *ns)
{
    csl_kube_error ke;
    cJSON *obj = csl_kube_get(e->kube, &R_NS, NULL, ns, NULL, &ke);
    cJSON_Delete(obj);
    return !obj && ke.code == CSL_KUBE_NOT_FOUND;
}

/* Deletes ns and waits (bounded) until it is gone. The operators are
 * already down, so CloudServers still holding finalizers would keep it
 * for ever: they are stripped, and said so. */
static void delete_namespace(sr_env *e, const char *ns)
{
    csl_kube_error ke;
    if (csl_kube_delete(e->kube, &R_NS, NULL, ns, NULL, &ke) != 0) {
        if (ke.code != CSL_KUBE_NOT_FOUND)
            csl_log(CSL_LOG_WARN, "deleting the namespace failed", "namespace", ns, "error",
                    ke.message, NULL);
        return;
    }
    int64_t start = sr_ep_now_ms();
    /* The local plane has no namespace controller: do its work at once.
     * Elsewhere give the controller (and a deployed operator, which still
     * runs) a chance first. */
    int64_t strip_at = e->local ? start : start + NAMESPACE_GONE_TIMEOUT_MS / 2;
    int64_t finalize_at = e->local ? start : start + NAMESPACE_GONE_TIMEOUT_MS * 3 / 4;
    bool stripped = false, finalized = false;
    for (;;) {
        if (namespace_gone(e, ns)) return;
        int64_t now = sr_ep_now_ms();
        if (!stripped && now >= strip_at) {
            stripped = true;
            int a = strip_finalizers(e, &R_CS, ns), b = strip_finalizers(e, &R_CSS, ns);
            if (a > 0 || b > 0) {
                char n[32];
                snprintf(n, sizeof n, "%d", (a > 0 ? a : 0) + (b > 0 ? b : 0));
                csl_log(CSL_LOG_WARN,
                        "removed the finalizers of objects left in the namespace: the operator "
                        "that would release them is already stopped",
                        "namespace", ns, "objects", n, NULL);
            }
        }
        if (!finalized && now >= finalize_at) {
            finalized = true;
            finalize_namespace(e, ns);
            continue;
        }
        if (now - start >= NAMESPACE_GONE_TIMEOUT_MS) break;
        sr_ep_sleep_ms(200);
    }
    csl_log(CSL_LOG_WARN, "the namespace is still there after 60 s", "namespace", ns, NULL);
}

/* ---------------------------------------------------------------- operators (local) */

/* Whether CMD is one simple command that the shell can exec (so the PID we
 * hold is the operator's own): no operators, redirections, substitutions
 * or a leading assignment. */
static bool simple_command(const char *cmd)
{
    if (strpbrk(cmd, "|&;<>()`$\n")) return false;
    while (*cmd == ' ' || *cmd == '\t') cmd++;
    size_t w = strcspn(cmd, " \t");
    return memchr(cmd, '=', w) == NULL && w > 0;
}

/* argv for one run of replica r (all strings owned; free with
 * sr_ep_environ_free, which frees any NULL-terminated string array). */
static char **operator_argv(sr_stack *s, int r)
{
    sr_env *e = s->e;
    size_t cap = 40 + s->n_op_args;
    char **a = calloc(cap, sizeof *a);
    if (!a) return NULL;
    size_t n = 0;
    char buf[PATH_MAX + 64];
#define ADD(str) (a[n++] = strdup(str))
    if (e->operator_cmd) {
        ADD("/bin/sh");
        ADD("-c");
        snprintf(buf, sizeof buf, "%s%s \"$@\"", simple_command(e->operator_cmd) ? "exec " : "",
                 e->operator_cmd);
        ADD(buf);
        ADD("sh");
    } else {
        snprintf(buf, sizeof buf, "%s/cloudserver-operator", e->bin_dir);
        ADD(buf);
    }
    if (e->kubeconfig) {
        ADD("--kubeconfig");
        ADD(e->kubeconfig);
    }
    if (e->context) {
        ADD("--context");
        ADD(e->context);
    }
    ADD("--namespace");
    ADD(s->ns);
    ADD("--cloud-endpoint");
    ADD(s->mock_url);
    snprintf(buf, sizeof buf, "%s/%s", s->ns, SECRET_NAME);
    ADD("--cloud-credentials-secret");
    ADD(buf);
    ADD("--metrics-bind-address");
    ADD("127.0.0.1:0");
    ADD("--health-probe-bind-address");
    ADD("127.0.0.1:0");
    ADD("--ready-file");
    ADD(s->rep[r].ready_path);
    if (s->replicas > 1) {
        ADD("--leader-elect");
        ADD("--leader-election-namespace");
        ADD(s->ns);
    }
    for (size_t i = 0; i < s->n_op_args; i++) ADD(s->op_args[i]);
#undef ADD
    for (size_t i = 0; i < n; i++)
        if (!a[i]) {
            sr_ep_environ_free(a);
            return NULL;
        }
    return a;
}

static char **operator_envp(sr_stack *s)
{
    sr_env *e = s->e;
    char brk[512], pre[PATH_MAX + 600], ft[64], asan[600];
    char *set[4];
    size_t n = 0;
    if (e->break_mode) {
        snprintf(brk, sizeof brk, "CSL_OPERATOR_BREAK=%s", e->break_mode);
        set[n++] = brk;
    }
    if (s->time_scale != 1.0) {
        const char *old = getenv("LD_PRELOAD");
        snprintf(pre, sizeof pre, "LD_PRELOAD=%s%s%s", e->faketime_lib, old && *old ? ":" : "",
                 old ? old : "");
        set[n++] = pre;
        /* "+0 xF": no offset, the clock (wall and monotonic, and sleeps and
         * timed waits) runs F times as fast. '.' is the operator's decimal
         * separator: it never calls setlocale. */
        snprintf(ft, sizeof ft, "FAKETIME=+0 x%g", s->time_scale);
        set[n++] = ft;
        /* An ASan-built operator refuses a preload that comes before it. */
        const char *ao = getenv("ASAN_OPTIONS");
        snprintf(asan, sizeof asan, "ASAN_OPTIONS=%s%sverify_asan_link_order=0",
                 ao && *ao ? ao : "", ao && *ao ? ":" : "");
        set[n++] = asan;
    }
    return sr_ep_environ_with(set, n);
}

/* Under s->mu: whether replica r's process still runs; reaps it when not. */
static bool rep_alive_locked(sr_replica *p)
{
    if (p->pid <= 0) return false;
    int st;
    int rc = sr_ep_wait(p->pid, 0, &st);
    if (rc == 0) return true;
    p->last_exit = rc == 1 ? st : -1;
    p->pid = p->op_pid = 0;
    p->metrics[0] = '\0';
    return false;
}

/* Starts replica r (not running) without waiting for it. */
static int replica_spawn(sr_stack *s, int r, char *err, size_t errsz)
{
    sr_replica *p = &s->rep[r];
    unlink(p->ready_path);
    struct stat sb;
    long off = p->starts > 0 && stat(p->log_path, &sb) == 0 ? (long)sb.st_size : 0;
    char **argv = operator_argv(s, r);
    char **envp = operator_envp(s);
    pid_t pid = -1;
    if (!argv || !envp)
        snprintf(err, errsz, "out of memory");
    else
        pid = sr_ep_spawn(s->e->sp, argv, envp, p->log_path, p->starts > 0, err, errsz);
    sr_ep_environ_free(argv);
    sr_ep_environ_free(envp);
    if (pid < 0) return -1;
    pthread_mutex_lock(&s->mu);
    p->pid = pid;
    p->op_pid = 0;
    p->starts++;
    p->log_off = off;
    p->last_exit = -1;
    p->metrics[0] = p->identity[0] = '\0';
    pthread_mutex_unlock(&s->mu);
    return 0;
}

/* "HOST:PORT" / ":PORT" of the ready file's key as a base URL. */
static bool ready_addr(const cJSON *j, const char *key, char *out, size_t outsz)
{
    const char *a = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, key));
    if (!a) return false;
    const char *colon = strrchr(a, ':');
    if (!colon || atoi(colon + 1) <= 0) return false;
    if (colon == a || strncmp(a, "0.0.0.0:", 8) == 0)
        snprintf(out, outsz, "http://127.0.0.1%s", colon);
    else
        snprintf(out, outsz, "http://%s", a);
    return true;
}

/* Reads the identity the run logged when it began campaigning ("identity="
 * in text logs, "identity":"…" in JSON logs). Under s->mu. */
static void read_identity_locked(sr_replica *p)
{
    if (p->identity[0]) return;
    FILE *f = fopen(p->log_path, "r");
    if (!f) return;
    fseek(f, p->log_off, SEEK_SET);
    char line[2048];
    while (fgets(line, sizeof line, f)) {
        if (!strstr(line, "campaigning for leadership")) continue;
        const char *v = strstr(line, "identity=");
        size_t skip = 9;
        if (!v) {
            v = strstr(line, "\"identity\":\"");
            skip = 12;
        }
        if (!v) continue;
        v += skip;
        size_t l = strcspn(v, " \t\r\n\"");
        snprintf(p->identity, sizeof p->identity, "%.*s", (int)l, v);
    }
    fclose(f);
}

/* Waits for replica r's ready file. 0, or -1 with err (it is then killed). */
static int replica_wait_ready(sr_stack *s, int r, char *err, size_t errsz)
{
    sr_replica *p = &s->rep[r];
    int64_t end = sr_ep_now_ms() + OPERATOR_START_TIMEOUT_MS;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        bool alive = rep_alive_locked(p);
        int code = p->last_exit;
        pthread_mutex_unlock(&s->mu);
        if (!alive) {
            snprintf(err, errsz, "operator replica %d exited with status %d during start-up", r,
                     code);
            add_log_tail(err, errsz, p->log_path);
            return -1;
        }
        char *txt = read_small_file(p->ready_path);
        cJSON *j = txt ? cJSON_Parse(txt) : NULL; /* written atomically: whole JSON means ready */
        free(txt);
        if (j) {
            char url[128];
            bool ok = ready_addr(j, "metrics", url, sizeof url);
            const cJSON *pid = cJSON_GetObjectItemCaseSensitive(j, "pid");
            pthread_mutex_lock(&s->mu);
            if (ok) snprintf(p->metrics, sizeof p->metrics, "%s", url);
            /* Trust the pid only if it is in our child's process group. */
            if (cJSON_IsNumber(pid) && getpgid((pid_t)pid->valuedouble) == p->pid)
                p->op_pid = (pid_t)pid->valuedouble;
            read_identity_locked(p);
            pthread_mutex_unlock(&s->mu);
            cJSON_Delete(j);
            if (ok) return 0;
            snprintf(err, errsz, "operator replica %d's ready file %s has no metrics address", r,
                     p->ready_path);
            break;
        }
        if (sr_ep_now_ms() >= end) {
            snprintf(err, errsz, "operator replica %d wrote no ready file in %d s", r,
                     OPERATOR_START_TIMEOUT_MS / 1000);
            add_log_tail(err, errsz, p->log_path);
            break;
        }
        sr_ep_sleep_ms(25);
    }
    pthread_mutex_lock(&s->mu);
    sr_ep_kill(p->pid);
    rep_alive_locked(p);
    pthread_mutex_unlock(&s->mu);
    return -1;
}

/* SIGTERM to the operator (its own PID when the ready file gave it, so a
 * wrapping shell reports its exit status), up to 45 s, then SIGKILL. 0 on
 * exit status 0; -1 with err otherwise. */
static int replica_stop(sr_stack *s, int r, char *err, size_t errsz)
{
    sr_replica *p = &s->rep[r];
    pthread_mutex_lock(&s->mu);
    bool alive = rep_alive_locked(p);
    pid_t pid = p->pid, target = p->op_pid > 0 ? p->op_pid : p->pid;
    pthread_mutex_unlock(&s->mu);
    if (!alive) {
        snprintf(err, errsz, "operator replica %d is not running", r);
        return -1;
    }
    kill(target, SIGTERM);
    int64_t end = sr_ep_now_ms() + OPERATOR_STOP_GRACE_MS;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        alive = rep_alive_locked(p);
        int code = p->last_exit;
        pthread_mutex_unlock(&s->mu);
        if (!alive) {
            if (code == 0) return 0;
            snprintf(err, errsz, "operator replica %d exited with status %d after SIGTERM (log %s)",
                     r, code, p->log_path);
            return -1;
        }
        if (sr_ep_now_ms() >= end) break;
        sr_ep_sleep_ms(50);
    }
    pthread_mutex_lock(&s->mu);
    sr_ep_kill(pid);
    rep_alive_locked(p);
    pthread_mutex_unlock(&s->mu);
    snprintf(err, errsz, "operator replica %d ignored SIGTERM for %d s; killed (log %s)", r,
             OPERATOR_STOP_GRACE_MS / 1000, p->log_path);
    return -1;
}

static int replica_kill(sr_stack *s, int r, bool must_run, char *err, size_t errsz)
{
    sr_replica *p = &s->rep[r];
    pthread_mutex_lock(&s->mu);
    bool alive = rep_alive_locked(p);
    if (alive) {
        sr_ep_kill(p->pid);
        rep_alive_locked(p);
    }
    pthread_mutex_unlock(&s->mu);
    if (!alive && must_run) {
        snprintf(err, errsz, "operator replica %d is not running", r);
        return -1;
    }
    return 0;
}

static int replica_start(sr_stack *s, int r, char *err, size_t errsz)
{
    pthread_mutex_lock(&s->mu);
    bool alive = rep_alive_locked(&s->rep[r]);
    pthread_mutex_unlock(&s->mu);
    if (alive) {
        snprintf(err, errsz, "operator replica %d is already running", r);
        return -1;
    }
    if (replica_spawn(s, r, err, errsz) != 0) return -1;
    return replica_wait_ready(s, r, err, errsz);
}

/* ---------------------------------------------------------------- leader */

static const char *lease_holder(sr_env *e, const char *ns, const char *name, cJSON **keep)
{
    csl_kube_error ke;
    *keep = csl_kube_get(e->kube, &R_LEASE, ns, name, NULL, &ke);
    const char *h = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(*keep, "spec"), "holderIdentity"));
    return h && *h ? h : NULL;
}

/* The operator pods (kubeconfig mode), live ones only, sorted by name. */
static cJSON *operator_pods(sr_env *e, char *err, size_t errsz)
{
    if (!e->op_ns || !e->op_selector) {
        snprintf(err, errsz,
                 "acting on the deployed operator needs --operator-namespace and "
                 "--operator-selector");
        return NULL;
    }
    csl_kube_list_opts lo = {.label_selector = e->op_selector};
    csl_kube_error ke;
    cJSON *list = csl_kube_list_all(e->kube, &R_POD, e->op_ns, &lo, &ke);
    if (!list) {
        kerr(err, errsz, "listing the operator's pods", &ke);
        return NULL;
    }
    cJSON *items = cJSON_DetachItemFromObjectCaseSensitive(list, "items");
    cJSON_Delete(list);
    cJSON *out = cJSON_CreateArray();
    /* Selection sort by name: a handful of pods. */
    for (;;) {
        cJSON *best = NULL;
        for (cJSON *it = items ? items->child : NULL; it; it = it->next) {
            const cJSON *md = cJSON_GetObjectItemCaseSensitive(it, "metadata");
            if (cJSON_GetObjectItemCaseSensitive(md, "deletionTimestamp")) continue;
            if (!best || strcmp(csl_kube_obj_name(it), csl_kube_obj_name(best)) < 0) best = it;
        }
        if (!best) break;
        cJSON_AddItemToArray(out, cJSON_DetachItemViaPointer(items, best));
    }
    cJSON_Delete(items);
    if (cJSON_GetArraySize(out) == 0) {
        snprintf(err, errsz, "no operator pod matches -l %s in namespace %s", e->op_selector,
                 e->op_ns);
        cJSON_Delete(out);
        return NULL;
    }
    return out;
}

int sr_stack_leader(sr_stack *s)
{
    sr_env *e = s->e;
    cJSON *lease = NULL;
    if (!e->local) {
        if (!e->op_ns) return -1;
        /* In a pod the identity is "<pod name>_<hex>": the hostname is the pod's name. */
        const char *h = lease_holder(e, e->op_ns, s->lease_name, &lease);
        char err[256];
        cJSON *pods = h ? operator_pods(e, err, sizeof err) : NULL;
        int found = -1, i = 0;
        const char *us = h ? strrchr(h, '_') : NULL;
        size_t hl = us ? (size_t)(us - h) : (h ? strlen(h) : 0);
        for (cJSON *p = pods ? pods->child : NULL; p; p = p->next, i++) {
            const char *n = csl_kube_obj_name(p);
            if (n && strlen(n) == hl && strncmp(n, h, hl) == 0) found = i;
        }
        cJSON_Delete(pods);
        cJSON_Delete(lease);
        return found;
    }
    const char *h = lease_holder(e, s->ns, s->lease_name, &lease);
    int found = -1;
    pthread_mutex_lock(&s->mu);
    for (int r = 0; h && r < s->replicas && found < 0; r++) {
        sr_replica *p = &s->rep[r];
        if (p->starts == 0) continue;
        read_identity_locked(p);
        if (p->identity[0] && strcmp(p->identity, h) == 0) found = r;
    }
    /* One replica and no Lease: it leads by itself. */
    if (!lease && s->replicas == 1 && rep_alive_locked(&s->rep[0])) found = 0;
    pthread_mutex_unlock(&s->mu);
    cJSON_Delete(lease);
    return found;
}

/* ---------------------------------------------------------------- stacks */

static void stack_free(sr_stack *s)
{
    free(s->scenario);
    free(s->admin_token);
    free(s->token);
    for (size_t i = 0; i < s->n_op_args; i++) free(s->op_args[i]);
    free(s->op_args);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->act);
    free(s);
}

/* The lease name: --leader-election-id from the scenario's flags, else the default. */
static void pick_lease_name(sr_stack *s, char *const *args, size_t n)
{
    snprintf(s->lease_name, sizeof s->lease_name, "%s", DEFAULT_LEASE);
    for (size_t i = 0; i < n; i++) {
        const char *a = args[i];
        if (strncmp(a, "--leader-election-id=", 21) == 0)
            snprintf(s->lease_name, sizeof s->lease_name, "%s", a + 21);
        else if (strcmp(a, "--leader-election-id") == 0 && i + 1 < n)
            snprintf(s->lease_name, sizeof s->lease_name, "%s", args[i + 1]);
    }
}

static int put_mock_config(sr_stack *s, const char *what, const cJSON *body, char *err,
                           size_t errsz)
{
    if (!body) return 0;
    char path[64];
    snprintf(path, sizeof path, "/_mock/%s", what);
    cJSON *reply = NULL;
    int st = sr_mock_request(s, "PUT", path, body, &reply, err, errsz);
    if (st >= 200 && st < 300) {
        cJSON_Delete(reply);
        return 0;
    }
    if (st >= 0) {
        char *txt = reply ? cJSON_PrintUnformatted(reply) : NULL;
        snprintf(err, errsz, "mockcloud refused setup.mockcloud.%s: PUT %s answered %d %.400s",
                 what, path, st, txt ? txt : "");
        free(txt);
    }
    cJSON_Delete(reply);
    return -1;
}

static int start_mockcloud(sr_stack *s, const sr_stack_options *opt, char *err, size_t errsz)
{
    sr_env *e = s->e;
    char bin[PATH_MAX], port_path[PATH_MAX], seed[32], tok[160], adm[160];
    snprintf(bin, sizeof bin, "%s/mockcloud", e->bin_dir);
    snprintf(port_path, sizeof port_path, "%s/%s-mockcloud.port", e->work_dir, s->scenario);
    snprintf(s->mock_log, sizeof s->mock_log, "%s/%s-mockcloud.log", e->work_dir, s->scenario);
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)opt->seed);
    snprintf(tok, sizeof tok, "%s", s->token);
    snprintf(adm, sizeof adm, "%s", s->admin_token);
    unlink(port_path);
    char **argv = calloc(16 + opt->n_mock_args, sizeof *argv);
    if (!argv) {
        snprintf(err, errsz, "out of memory");
        return -1;
    }
    size_t n = 0;
    char *fixed[] = {bin,  "--listen", "127.0.0.1:0", "--port-file",   port_path, "--seed",
                     seed, "--token",  tok,           "--admin-token", adm};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) argv[n++] = fixed[i];
    for (size_t i = 0; i < opt->n_mock_args; i++) argv[n++] = opt->mock_args[i];
    argv[n] = NULL;
    s->mock_pid = sr_ep_spawn(e->sp, argv, NULL, s->mock_log, false, err, errsz);
    free(argv);
    if (s->mock_pid < 0) {
        s->mock_pid = 0;
        return -1;
    }
    int64_t end = sr_ep_now_ms() + MOCK_START_TIMEOUT_MS;
    for (;;) {
        int st;
        if (sr_ep_wait(s->mock_pid, 0, &st) != 0) {
            s->mock_pid = 0;
            snprintf(err, errsz, "mockcloud exited with status %d during start-up", st);
            add_log_tail(err, errsz, s->mock_log);
            return -1;
        }
        char *txt = read_small_file(port_path);
        int port = txt && strchr(txt, '\n') ? atoi(txt) : 0;
        free(txt);
        if (port > 0) {
            snprintf(s->mock_url, sizeof s->mock_url, "http://127.0.0.1:%d", port);
            return 0;
        }
        if (sr_ep_now_ms() >= end) break;
        sr_ep_sleep_ms(20);
    }
    snprintf(err, errsz, "mockcloud wrote no port file in %d s", MOCK_START_TIMEOUT_MS / 1000);
    add_log_tail(err, errsz, s->mock_log);
    sr_ep_kill(s->mock_pid);
    s->mock_pid = 0;
    return -1;
}

/* Stops every process of the stack: operators (SIGTERM together, 45 s),
 * then mockcloud. */
static void stop_processes(sr_stack *s)
{
    if (!s->e->local) return;
    int64_t end = sr_ep_now_ms() + OPERATOR_STOP_GRACE_MS;
    pthread_mutex_lock(&s->mu);
    for (int r = 0; r < s->replicas; r++) {
        sr_replica *p = &s->rep[r];
        if (rep_alive_locked(p)) kill(p->op_pid > 0 ? p->op_pid : p->pid, SIGTERM);
    }
    pthread_mutex_unlock(&s->mu);
    for (int r = 0; r < s->replicas; r++) {
        for (;;) {
            pthread_mutex_lock(&s->mu);
            sr_replica *p = &s->rep[r];
            bool alive = rep_alive_locked(p);
            if (alive && sr_ep_now_ms() >= end) {
                csl_log(CSL_LOG_WARN, "an operator replica ignored SIGTERM for 45 s; killing it",
                        "log", p->log_path, NULL);
                sr_ep_kill(p->pid);
                alive = rep_alive_locked(p);
            }
            pthread_mutex_unlock(&s->mu);
            if (!alive) break;
            sr_ep_sleep_ms(50);
        }
    }
    if (s->mock_pid > 0) {
        int st;
        if (sr_ep_stop(s->mock_pid, false, MOCK_STOP_GRACE_MS, &st) == 2)
            csl_log(CSL_LOG_WARN, "mockcloud ignored SIGTERM; killed", "log", s->mock_log, NULL);
        s->mock_pid = 0;
    }
}

sr_stack *sr_stack_up(sr_env *e, const sr_stack_options *opt, char *err, size_t errsz)
{
    if (opt->replicas < 1 || opt->replicas > SR_MAX_REPLICAS) {
        snprintf(err, errsz, "operator replicas must be 1..%d, not %d", SR_MAX_REPLICAS,
                 opt->replicas);
        return NULL;
    }
    double scale = opt->time_scale > 0 ? opt->time_scale : 1.0;
    if (e->local && scale != 1.0 && !e->faketime_lib[0]) {
        snprintf(err, errsz,
                 "timeScale %g needs libfaketime (libfaketimeMT.so.1), which is not "
                 "installed: run `make deps` (or set CSL_FAKETIME_LIB)",
                 scale);
        return NULL;
    }
    sr_stack *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errsz, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->act, NULL);
    s->e = e;
    s->replicas = e->local ? opt->replicas : 0;
    s->time_scale = scale;
    s->scenario = strdup(opt->scenario && *opt->scenario ? opt->scenario : "scenario");
    s->op_args = calloc(opt->n_operator_args + 1, sizeof *s->op_args);
    if (!s->scenario || !s->op_args) goto oom;
    for (size_t i = 0; i < opt->n_operator_args; i++)
        if (!(s->op_args[s->n_op_args++] = strdup(opt->operator_args[i]))) goto oom;
    pick_lease_name(s, opt->operator_args, opt->n_operator_args);

    /* sr-<scenario>-<4 hex>, at most 63 characters, never ending in '-'. */
    char hex[5];
    random_hex(hex, 4);
    char name[56]; /* 63 - "sr-" - "-xxxx" */
    snprintf(name, sizeof name, "%s", s->scenario);
    for (char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9'))) *c = '-';
    for (size_t l = strlen(name); l > 0 && name[l - 1] == '-'; l--) name[l - 1] = '\0';
    snprintf(s->ns, sizeof s->ns, "sr-%.55s-%.4s", name, hex);

    if (e->local) {
        char t[33], a[33];
        random_hex(t, 32);
        random_hex(a, 32);
        s->token = strdup(t);
        s->admin_token = strdup(a);
        if (!s->token || !s->admin_token) goto oom;
    } else {
        s->token = dup_or_null(e->mock_token);
        s->admin_token = dup_or_null(e->mock_admin);
        snprintf(s->mock_url, sizeof s->mock_url, "%s", e->mock_url);
        size_t l = strlen(s->mock_url);
        while (l > 0 && s->mock_url[l - 1] == '/') s->mock_url[--l] = '\0';
        pick_lease_name(s, NULL, 0);
    }
    for (int r = 0; r < SR_MAX_REPLICAS; r++) {
        sr_replica *p = &s->rep[r];
        p->last_exit = -1;
        snprintf(p->log_path, sizeof p->log_path, "%s/%s-operator-%d.log", e->work_dir, s->scenario,
                 r);
        snprintf(p->ready_path, sizeof p->ready_path, "%s/%s-operator-%d.ready.json", e->work_dir,
                 s->scenario, r);
    }

    if (create_namespace(e, s->ns, err, errsz) != 0) goto fail_no_ns;
    if ((s->token || e->local) && create_secret(e, s->ns, s->token, err, errsz) != 0) goto fail;
    if (e->local && start_mockcloud(s, opt, err, errsz) != 0) goto fail;
    if (put_mock_config(s, "timings", opt->timings, err, errsz) != 0 ||
        put_mock_config(s, "capacity", opt->capacity, err, errsz) != 0)
        goto fail;
    if (e->local) {
        /* Start all, then wait for all: replicas come up side by side. */
        for (int r = 0; r < s->replicas; r++)
            if (replica_spawn(s, r, err, errsz) != 0) goto fail;
        for (int r = 0; r < s->replicas; r++)
            if (replica_wait_ready(s, r, err, errsz) != 0) goto fail;
    } else {
        cJSON *pods = operator_pods(e, err, errsz);
        if (!pods && e->op_ns && e->op_selector) goto fail;
        s->replicas = pods ? cJSON_GetArraySize(pods) : 0;
        cJSON_Delete(pods);
    }
    csl_log(CSL_LOG_INFO, "stack up", "scenario", s->scenario, "namespace", s->ns, "mockcloud",
            s->mock_url, NULL);
    return s;
oom:
    snprintf(err, errsz, "out of memory");
    stack_free(s);
    return NULL;
fail:
    stop_processes(s);
    if (!e->keep) delete_namespace(e, s->ns);
    stack_free(s);
    return NULL;
fail_no_ns:
    stack_free(s);
    return NULL;
}

void sr_stack_down(sr_stack *s)
{
    if (!s) return;
    pthread_mutex_lock(&s->act);
    stop_processes(s);
    pthread_mutex_unlock(&s->act);
    if (s->e->keep)
        csl_log(CSL_LOG_INFO, "--keep: the namespace stays", "namespace", s->ns, NULL);
    else
        delete_namespace(s->e, s->ns);
    stack_free(s);
}

const char *sr_stack_namespace(const sr_stack *s)
{
    return s->ns;
}

const char *sr_stack_mock_url(const sr_stack *s)
{
    return s->mock_url;
}

const char *sr_stack_mock_admin_token(const sr_stack *s)
{
    return s->admin_token;
}

const char *sr_stack_log_dir(const sr_stack *s)
{
    return s->e->work_dir;
}

int sr_stack_replicas(const sr_stack *s)
{
    return s->replicas;
}

/* ---------------------------------------------------------------- mockcloud */

int sr_mock_request(sr_stack *s, const char *method, const char *path, const cJSON *body,
                    cJSON **reply, char *err, size_t errsz)
{
    if (reply) *reply = NULL;
    char *url = malloc(strlen(s->mock_url) + strlen(path) + 1);
    char *txt = body ? cJSON_PrintUnformatted(body) : NULL;
    if (!url || (body && !txt)) {
        free(url);
        free(txt);
        snprintf(err, errsz, "out of memory");
        return -1;
    }
    strcpy(url, s->mock_url);
    strcat(url, path);
    const char *bearer = strncmp(path, "/_mock", 6) == 0 ? s->admin_token : s->token;
    csl_buf resp = CSL_BUF_INIT;
    int st = http_do(method, url, bearer, txt, &resp, err, errsz);
    if (st >= 0 && reply && resp.len > 0) *reply = cJSON_ParseWithLength(resp.data, resp.len);
    csl_buf_free(&resp);
    free(url);
    free(txt);
    return st;
}

/* ---------------------------------------------------------------- operator actions */

static int pod_action(sr_stack *s, const char *action, int replica, char *err, size_t errsz)
{
    sr_env *e = s->e;
    bool kill_it = strcmp(action, "kill") == 0;
    if (!kill_it && strcmp(action, "restart") != 0) {
        snprintf(err, errsz,
                 "operator action %s is not supported against a deployed operator; "
                 "use --local or --operator-cmd",
                 action);
        return -1;
    }
    int r = replica;
    if (r < 0 && (r = sr_stack_leader(s)) < 0) {
        snprintf(err, errsz, "no operator pod holds the Lease %s/%s", e->op_ns ? e->op_ns : "",
                 s->lease_name);
        return -1;
    }
    cJSON *pods = operator_pods(e, err, errsz);
    if (!pods) return -1;
    cJSON *pod = cJSON_GetArrayItem(pods, r);
    if (!pod) {
        snprintf(err, errsz, "operator replica %d: only %d pods match -l %s", r,
                 cJSON_GetArraySize(pods), e->op_selector);
        cJSON_Delete(pods);
        return -1;
    }
    /* kill: no grace, as SIGKILL; restart: the pod's own grace (SIGTERM) and
     * its controller makes a new one. */
    csl_kube_delete_opts d = {.grace_period_s = kill_it ? CSL_KUBE_GRACE_IMMEDIATE : 0};
    csl_kube_error ke;
    int rc = csl_kube_delete(e->kube, &R_POD, e->op_ns, csl_kube_obj_name(pod), &d, &ke);
    if (rc != 0) {
        char what[300];
        snprintf(what, sizeof what, "deleting operator pod %s", csl_kube_obj_name(pod));
        kerr(err, errsz, what, &ke);
    }
    cJSON_Delete(pods);
    return rc;
}

int sr_stack_operator(sr_stack *s, const char *action, int replica, char *err, size_t errsz)
{
    if (replica >= s->replicas && (s->e->local || s->replicas > 0)) {
        snprintf(err, errsz, "operator replica %d does not exist (the stack has %d)", replica,
                 s->replicas);
        return -1;
    }
    if (!s->e->local) return pod_action(s, action, replica, err, errsz);
    pthread_mutex_lock(&s->act);
    int r = replica, rc = -1;
    if (r < 0 && (r = sr_stack_leader(s)) < 0) {
        snprintf(err, errsz, "no operator replica holds the Lease %s/%s", s->ns, s->lease_name);
        goto out;
    }
    if (strcmp(action, "kill") == 0)
        rc = replica_kill(s, r, true, err, errsz);
    else if (strcmp(action, "stop") == 0)
        rc = replica_stop(s, r, err, errsz);
    else if (strcmp(action, "start") == 0)
        rc = replica_start(s, r, err, errsz);
    else if (strcmp(action, "restart") == 0)
        rc = replica_kill(s, r, false, err, errsz) == 0 ? replica_start(s, r, err, errsz) : -1;
    else
        snprintf(err, errsz, "unknown operator action \"%s\" (kill, stop, start, restart)", action);
out:
    pthread_mutex_unlock(&s->act);
    return rc;
}

bool sr_stack_replica_running(sr_stack *s, int r)
{
    if (!s->e->local || r < 0 || r >= s->replicas) return true;
    pthread_mutex_lock(&s->mu);
    bool alive = rep_alive_locked(&s->rep[r]);
    pthread_mutex_unlock(&s->mu);
    return alive;
}

int sr_stack_metrics(sr_stack *s, int r, csl_buf *out, char *err, size_t errsz)
{
    char url[256] = "";
    if (!s->e->local) {
        if (!s->e->op_metrics_url) {
            snprintf(err, errsz, "no --operator-metrics-url given");
            return -1;
        }
        snprintf(url, sizeof url, "%s", s->e->op_metrics_url);
    } else {
        /* -1: the leader while it runs, else whichever replica runs. */
        int want = r < 0 ? sr_stack_leader(s) : r;
        pthread_mutex_lock(&s->mu);
        if (want >= 0 && want < s->replicas && rep_alive_locked(&s->rep[want]) &&
            s->rep[want].metrics[0])
            snprintf(url, sizeof url, "%s/metrics", s->rep[want].metrics);
        for (int i = 0; r < 0 && i < s->replicas && !url[0]; i++)
            if (rep_alive_locked(&s->rep[i]) && s->rep[i].metrics[0])
                snprintf(url, sizeof url, "%s/metrics", s->rep[i].metrics);
        pthread_mutex_unlock(&s->mu);
        if (!url[0]) {
            if (r >= 0)
                snprintf(err, errsz, "operator replica %d is not running", r);
            else
                snprintf(err, errsz, "no operator replica is running");
            return -1;
        }
    }
    csl_buf body = CSL_BUF_INIT;
    int st = http_do("GET", url, NULL, NULL, &body, err, errsz);
    if (st == 200) csl_buf_append(out, body.data ? body.data : "", body.len);
    if (st >= 0 && st != 200) snprintf(err, errsz, "GET %s answered %d", url, st);
    csl_buf_free(&body);
    return st == 200 ? 0 : -1;
}

/* ---------------------------------------------------------------- exec environment */

char **sr_stack_environ(sr_stack *s, const char *scenario)
{
    const char *kc = sr_env_kubeconfig(s->e);
    const char *vals[][2] = {
        {"KUBECONFIG", kc},
        {"CSL_NAMESPACE", s->ns},
        {"CSL_MOCKCLOUD_URL", s->mock_url},
        {"CSL_MOCKCLOUD_ADMIN_TOKEN", s->admin_token},
        {"CSL_MOCKCLOUD_TOKEN", s->token},
        {"CSL_SCENARIO", scenario ? scenario : s->scenario},
    };
    size_t nv = sizeof vals / sizeof vals[0];
    char *set[sizeof vals / sizeof vals[0]];
    size_t n = 0;
    for (size_t i = 0; i < nv; i++) {
        if (!vals[i][1]) continue;
        size_t l = strlen(vals[i][0]) + strlen(vals[i][1]) + 2;
        if (!(set[n] = malloc(l))) goto out;
        snprintf(set[n++], l, "%s=%s", vals[i][0], vals[i][1]);
    }
    char **envp = sr_ep_environ_with(set, n);
    for (size_t i = 0; i < n; i++) free(set[i]);
    return envp;
out:
    for (size_t i = 0; i < n; i++) free(set[i]);
    return NULL;
}

void sr_env_free_environ(char **envp)
{
    sr_ep_environ_free(envp);
}
