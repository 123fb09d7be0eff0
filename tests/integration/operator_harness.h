/* operator_harness.h — runs the real bin/cloudserver-operator for the
 * integration tests: start with loopback metrics and probe ports and a
 * ready file, read its /metrics and probes, stop it by SIGTERM (exit 0
 * required) or SIGKILL, and check its stderr for sanitizer reports.
 *
 * Header-only (static functions), like mockcloud_harness.h, on which it
 * builds: the temp dirs, the kept pool, the HTTP exchange and the exit
 * handling are that file's.
 *
 * The one idea is the same as there: nothing outlives the test program.
 * Operators live in a pool; oph_teardown (call it from the suite's clean-up)
 * and an atexit hook SIGKILL whatever still runs and print its stderr, and
 * every child asks the kernel to SIGKILL it when the test dies
 * (PR_SET_PDEATHSIG).
 *
 * Environment: CSL_BIN_DIR (where cloudserver-operator is; default "bin").
 * The operator inherits the test's environment, plus what oph_start adds. */
#ifndef OPERATOR_HARNESS_H
#define OPERATOR_HARNESS_H

#include "mockcloud_harness.h"

#define OPH_MAX 6
#define OPH_MAX_ENV 512
/* Generous: under ASan on a loaded 2-core machine start-up and a clean stop
 * (in-flight reconciles may take up to 30 s) are slow. */
#define OPH_START_TIMEOUT_MS 60000
#define OPH_STOP_TIMEOUT_MS 45000

extern char **environ;

typedef struct oph_operator {
    bool used;
    pid_t pid; /* > 0 while running */
    int starts;
    char label[32]; /* for messages: "main", "replica-b" */
    char dir[MCH_DIR_LEN];
    char err_path[MCH_PATH_LEN];
    char ready_path[MCH_PATH_LEN];
    char metrics[64]; /* "http://127.0.0.1:PORT" from the ready file */
    char health[64];
    CURL *curl;
    mch_resp last; /* the last reply; valid until the next request */
} oph_operator;

static oph_operator oph_ops[OPH_MAX];
static bool oph_inited;

/* ------------------------------------------------------------ pool, clean-up */

static inline int oph_check_stderr(oph_operator *op, bool show);

/* SIGKILLs every operator still running (a test failed on its way), prints
 * its stderr, and frees the slots. Safe to call any time; call it before
 * mch_teardown, which removes the temp dirs. */
static inline void oph_teardown(void)
{
    for (int i = 0; i < OPH_MAX; i++) {
        oph_operator *op = &oph_ops[i];
        if (!op->used) continue;
        if (op->pid > 0) {
            kill(op->pid, SIGKILL);
            int code;
            mch_wait_exit(op->pid, 5000, &code);
            fprintf(stderr,
                    "harness: operator %s (pid %d) was still running at tear-down; killed\n",
                    op->label, (int)op->pid);
            op->pid = 0;
            oph_check_stderr(op, true);
        }
        mch_resp_clear(&op->last);
        if (op->curl) curl_easy_cleanup(op->curl);
        memset(op, 0, sizeof *op);
    }
}

static inline void oph_atexit(void)
{
    oph_teardown();
}

static inline void oph_init(void)
{
    if (oph_inited) return;
    mch_init(); /* registered first, so it runs after ours at exit */
    oph_inited = true;
    atexit(oph_atexit);
}

/* A slot working in a fresh temp dir. Not started yet. */
static inline oph_operator *oph_new(const char *label)
{
    oph_init();
    const char *dir = mch_tmpdir();
    if (!dir) return NULL;
    for (int i = 0; i < OPH_MAX; i++) {
        oph_operator *op = &oph_ops[i];
        if (op->used) continue;
        memset(op, 0, sizeof *op);
        op->used = true;
        snprintf(op->label, sizeof op->label, "%s", label);
        snprintf(op->dir, sizeof op->dir, "%s", dir);
        op->curl = curl_easy_init();
        return op;
    }
    fprintf(stderr, "harness: too many operators\n");
    return NULL;
}

/* ------------------------------------------------------------ stderr */

/* Prints the tail of this run's stderr (label in the banner). */
static inline void oph_print_stderr(const oph_operator *op, size_t max)
{
    char *err = mch_read_file(op->err_path, NULL);
    char what[96];
    snprintf(what, sizeof what, "operator %s stderr (start %d)", op->label, op->starts);
    mch_print_tail(what, err ? err : "(none)", max);
    free(err);
}

/* 0 when this run's stderr holds no sanitizer report; else -1, printed.
 * show prints it anyway. */
static inline int oph_check_stderr(oph_operator *op, bool show)
{
    char *err = mch_read_file(op->err_path, NULL);
    bool bad = mch_has_sanitizer_report(err);
    free(err);
    if (bad) fprintf(stderr, "harness: sanitizer report in operator %s's stderr\n", op->label);
    if (bad || show) oph_print_stderr(op, bad ? 20000 : 6000);
    return bad ? -1 : 0;
}

/* True when a line of this run's stderr contains needle. */
static inline bool oph_stderr_has(const oph_operator *op, const char *needle)
{
    char *err = mch_read_file(op->err_path, NULL);
    bool has = err && strstr(err, needle);
    free(err);
    return has;
}

/* ------------------------------------------------------------ processes */

/* Forks and execs the operator with args (argv[0] added) and the test's
 * environment plus env (NULL-terminated "NAME=value", may be NULL; a name
 * given there replaces the inherited one). Returns the pid or -1. */
static inline pid_t oph_spawn(const char *const *args, const char *const *env, const char *out_path,
                              const char *err_path)
{
    char bin[MCH_PATH_LEN];
    snprintf(bin, sizeof bin, "%.900s/cloudserver-operator", mch_bin_dir());
    if (access(bin, X_OK) != 0) {
        fprintf(stderr, "harness: %s: %s (set CSL_BIN_DIR to the folder of the built programs)\n",
                bin, strerror(errno));
        return -1;
    }
    const char *argv[80];
    int n = 0;
    argv[n++] = bin;
    for (int i = 0; args && args[i] && n < 79; i++) argv[n++] = args[i];
    argv[n] = NULL;

    /* Built before fork: the child only calls async-signal-safe functions. */
    static const char *envp[OPH_MAX_ENV];
    int ne = 0;
    for (int i = 0; env && env[i] && ne < OPH_MAX_ENV - 1; i++) envp[ne++] = env[i];
    for (char **e = environ; e && *e && ne < OPH_MAX_ENV - 1; e++) {
        bool replaced = false;
        for (int i = 0; env && env[i]; i++) {
            const char *eq = strchr(env[i], '=');
            size_t nl = eq ? (size_t)(eq - env[i]) + 1 : strlen(env[i]);
            if (strncmp(*e, env[i], nl) == 0) replaced = true;
        }
        if (!replaced) envp[ne++] = *e;
    }
    envp[ne] = NULL;

    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "harness: fork: %s\n", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(127);
        int in = open("/dev/null", O_RDONLY);
        int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (in < 0 || out < 0 || err < 0) _exit(127);
        dup2(in, 0);
        dup2(out, 1);
        dup2(err, 2);
        for (int fd = 3; fd < 1024; fd++) close(fd);
        signal(SIGPIPE, SIG_DFL);
        execve(bin, (char *const *)argv, (char *const *)envp);
        _exit(127);
    }
    return pid;
}

/* Reads "127.0.0.1:PORT" (or ":PORT") at key of the ready file's JSON into
 * out as a base URL. */
static inline bool oph_ready_addr(const cJSON *j, const char *key, char *out, size_t outsz)
{
    const char *a = mch_str(j, key);
    if (!a) return false;
    const char *colon = strrchr(a, ':');
    if (!colon || atoi(colon + 1) <= 0) return false;
    const char *host = colon == a ? "127.0.0.1" : NULL;
    if (host)
        snprintf(out, outsz, "http://%s%s", host, colon);
    else
        snprintf(out, outsz, "http://%s", a);
    return true;
}

/* Starts the operator with args (NULL-terminated; the caller gives
 * --kubeconfig, --cloud-endpoint and the like) and env (see oph_spawn);
 * the harness adds loopback port-0 metrics and probe addresses and
 * --ready-file, and waits (bounded) for the ready file. Returns 0, or -1
 * with the reason and the operator's stderr printed (the process is gone). */
static inline int oph_start(oph_operator *op, const char *const *args, const char *const *env)
{
    if (!op) return -1;
    if (op->pid > 0) {
        fprintf(stderr, "harness: operator %s already running\n", op->label);
        return -1;
    }
    char out_path[MCH_PATH_LEN];
    op->starts++;
    snprintf(op->ready_path, sizeof op->ready_path, "%s/ready.%d.json", op->dir, op->starts);
    snprintf(out_path, sizeof out_path, "%s/stdout.%d", op->dir, op->starts);
    snprintf(op->err_path, sizeof op->err_path, "%s/stderr.%d", op->dir, op->starts);
    unlink(op->ready_path);
    op->metrics[0] = op->health[0] = '\0';

    const char *all[80];
    int n = 0;
    all[n++] = "--metrics-bind-address";
    all[n++] = "127.0.0.1:0";
    all[n++] = "--health-probe-bind-address";
    all[n++] = "127.0.0.1:0";
    all[n++] = "--ready-file";
    all[n++] = op->ready_path;
    for (int i = 0; args && args[i] && n < 79; i++) all[n++] = args[i];
    all[n] = NULL;

    op->pid = oph_spawn(all, env, out_path, op->err_path);
    if (op->pid < 0) {
        op->pid = 0;
        return -1;
    }
    int64_t end = mch_now_ms() + OPH_START_TIMEOUT_MS;
    for (;;) {
        int code;
        if (mch_wait_exit(op->pid, 0, &code) == 0) {
            fprintf(stderr, "harness: operator %s exited with %d during start-up\n", op->label,
                    code);
            op->pid = 0;
            oph_print_stderr(op, 8000);
            return -1;
        }
        /* The file is written atomically, so whole JSON means ready. */
        char *txt = mch_read_file(op->ready_path, NULL);
        cJSON *j = txt ? cJSON_Parse(txt) : NULL;
        free(txt);
        if (j) {
            bool ok = oph_ready_addr(j, "metrics", op->metrics, sizeof op->metrics) &&
                      oph_ready_addr(j, "health", op->health, sizeof op->health);
            cJSON_Delete(j);
            if (ok) return 0;
            fprintf(stderr, "harness: operator %s's ready file lacks metrics/health addresses\n",
                    op->label);
            kill(op->pid, SIGKILL);
            mch_wait_exit(op->pid, 5000, &code);
            op->pid = 0;
            oph_print_stderr(op, 8000);
            return -1;
        }
        if (mch_now_ms() >= end) {
            fprintf(stderr, "harness: operator %s wrote no ready file in %d ms\n", op->label,
                    OPH_START_TIMEOUT_MS);
            kill(op->pid, SIGKILL);
            mch_wait_exit(op->pid, 5000, &code);
            op->pid = 0;
            oph_print_stderr(op, 8000);
            return -1;
        }
        mch_sleep_ms(20);
    }
}

/* SIGTERM and a bounded wait. Returns 0 when the operator exited with
 * status 0 and wrote no sanitizer report; else -1, with its stderr. */
static inline int oph_stop(oph_operator *op)
{
    if (!op || op->pid <= 0) return -1;
    kill(op->pid, SIGTERM);
    int code, rc = 0;
    if (mch_wait_exit(op->pid, OPH_STOP_TIMEOUT_MS, &code) != 0) {
        fprintf(stderr, "harness: operator %s ignored SIGTERM for %d ms; killing\n", op->label,
                OPH_STOP_TIMEOUT_MS);
        kill(op->pid, SIGKILL);
        mch_wait_exit(op->pid, 5000, &code);
        rc = -1;
    } else if (code != 0) {
        fprintf(stderr, "harness: operator %s exited with %d after SIGTERM\n", op->label, code);
        rc = -1;
    }
    op->pid = 0;
    if (oph_check_stderr(op, rc != 0) != 0) rc = -1;
    return rc;
}

/* SIGKILL and reap. Returns 0 when no sanitizer report was written before. */
static inline int oph_kill9(oph_operator *op)
{
    if (!op || op->pid <= 0) return -1;
    kill(op->pid, SIGKILL);
    int code;
    mch_wait_exit(op->pid, 5000, &code);
    op->pid = 0;
    return oph_check_stderr(op, false);
}

/* True while the process runs (reaps it when it has ended). */
static inline bool oph_alive(oph_operator *op)
{
    if (!op || op->pid <= 0) return false;
    int code;
    if (mch_wait_exit(op->pid, 0, &code) == 0) {
        fprintf(stderr, "harness: operator %s exited on its own with %d\n", op->label, code);
        op->pid = 0;
        return false;
    }
    return true;
}

/* ------------------------------------------------------------ HTTP */

/* GET path on the metrics (health false) or probe (health true) server;
 * the reply is op->last, valid until the next request. */
static inline mch_resp *oph_get(oph_operator *op, bool health, const char *path)
{
    mch_resp_clear(&op->last);
    mch_opts o = {.timeout_ms = 10000};
    mch_http(op->curl, health ? op->health : op->metrics, "GET", path, NULL, NULL, &o, &op->last);
    return &op->last;
}

/* The sum of the samples of metric prefix ("name{" or "name "); -1 when
 * the scrape failed or the metric is absent. */
static inline double oph_metric(oph_operator *op, const char *prefix)
{
    mch_resp *r = oph_get(op, false, "/metrics");
    if (r->cc != CURLE_OK || r->status != 200) return -1;
    return mch_metric_sum(r->body, prefix);
}

#endif
