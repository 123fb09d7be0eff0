/* steps_proc.c — the operations on processes and time: operator (kill,
 * stop, start, restart a replica), apiserver (restart the local plane's),
 * sleep, and exec (a command whose exit code is checked).
 *
 * One idea: exec runs the command in its own process group with its
 * output on a pipe, waits with poll() against the op's deadline (no
 * sleeping loop), and kills that group — by the PID we got from fork —
 * when time is up or the run is interrupted. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include "csl/clock.h"
#include "steps.h"

#define OUTPUT_KEEP 4096

extern char **environ;

/* ---------------------------------------------------------------- operator / apiserver */

void sr_op_operator(sr_ctx *c, const sr_op *op, int64_t deadline_ns, sr_outcome *out)
{
    (void)deadline_ns;
    const cJSON *action = cJSON_GetObjectItemCaseSensitive(op->spec, "action");
    const cJSON *replica = cJSON_GetObjectItemCaseSensitive(op->spec, "replica");
    const char *a = cJSON_IsString(action) ? action->valuestring : "restart";
    int r = cJSON_IsNumber(replica) ? (int)replica->valuedouble
            : cJSON_IsString(replica) && !strcmp(replica->valuestring, "leader") ? -1
                                                                                 : 0;
    if (!c->stack) {
        sr_outcome_fail(out, c, op, SR_ERROR, "no operator in this run");
        return;
    }
    int who = r >= 0 ? r : sr_stack_leader(c->stack);
    char err[512] = "";
    if (sr_stack_operator(c->stack, a, r, err, sizeof err) < 0) {
        char rb[16];
        snprintf(rb, sizeof rb, r < 0 ? "leader" : "%d", r);
        sr_outcome_fail(out, c, op, SR_ERROR, "%s replica %s: %s", a, rb, err);
        return;
    }
    char what[100];
    if (who >= 0)
        snprintf(what, sizeof what, "%s replica %d%s", a, who, r < 0 ? " (leader)" : "");
    else
        snprintf(what, sizeof what, "%s the leader", a);
    if (c->mon) sr_monitor_fault(c->mon, "operator", what, true);
}

void sr_op_apiserver(sr_ctx *c, const sr_op *op, int64_t deadline_ns, sr_outcome *out)
{
    (void)deadline_ns;
    char err[512] = "";
    if (!c->env || !sr_env_is_local(c->env)) {
        sr_outcome_fail(out, c, op, SR_ERROR,
                        "restarting the API server needs --local (the runner's own plane)");
        return;
    }
    if (c->mon) sr_monitor_fault(c->mon, "apiserver", "kube-apiserver restart", false);
    int rc = sr_env_restart_apiserver(c->env, err, sizeof err);
    if (c->mon) sr_monitor_fault(c->mon, "apiserver", "kube-apiserver restart", true);
    if (rc < 0) sr_outcome_fail(out, c, op, SR_ERROR, "restart: %s", err);
}

/* ---------------------------------------------------------------- sleep */

void sr_op_sleep(sr_ctx *c, const sr_op *op, int64_t deadline_ns, sr_outcome *out)
{
    (void)deadline_ns;
    int64_t d = sr_steps_duration(op->spec, "duration", 0);
    if (!sr_ctx_sleep_until(c, csl_mono_ns() + sr_ctx_real_ns(c, d)))
        sr_outcome_fail(out, c, op, SR_ERROR, "interrupted");
}

/* ---------------------------------------------------------------- exec */

/* The child's environment: the stack's (or ours), then the op's env. */
static char **child_env(sr_ctx *c, const cJSON *env)
{
    char **base = c->stack ? sr_stack_environ(c->stack, c->sc ? c->sc->name : "") : NULL;
    char **src = base ? base : environ;
    size_t n = 0;
    while (src[n]) n++;
    size_t extra = (size_t)cJSON_GetArraySize(env) + 2;
    char **v = calloc(n + extra, sizeof *v);
    if (!v) goto out;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        bool overridden = false;
        const cJSON *it;
        cJSON_ArrayForEach(it, env)
        {
            size_t l = strlen(it->string);
            if (!strncmp(src[i], it->string, l) && src[i][l] == '=') overridden = true;
        }
        if (!overridden) v[k++] = strdup(src[i]);
    }
    if (!c->stack && c->sc) {
        size_t l = strlen(c->sc->name) + 16;
        if ((v[k] = malloc(l))) snprintf(v[k++], l, "CSL_SCENARIO=%s", c->sc->name);
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, env)
    {
        char num[64];
        const char *val = cJSON_IsString(it) ? it->valuestring : num;
        if (!cJSON_IsString(it)) snprintf(num, sizeof num, "%g", it->valuedouble);
        size_t l = strlen(it->string) + strlen(val) + 2;
        if ((v[k] = malloc(l))) snprintf(v[k++], l, "%s=%s", it->string, val);
    }
out:
    if (base) sr_env_free_environ(base);
    return v;
}

static void free_env(char **v)
{
    for (size_t i = 0; v && v[i]; i++) free(v[i]);
    free(v);
}

/* Keeps the last OUTPUT_KEEP bytes of the output in b. */
static void keep_tail(csl_buf *b, const char *p, size_t n)
{
    csl_buf_append(b, p, n);
    if (b->len > 2 * OUTPUT_KEEP) {
        memmove(b->data, b->data + b->len - OUTPUT_KEEP, OUTPUT_KEEP);
        b->len = OUTPUT_KEEP;
        b->data[b->len] = 0;
    }
}

void sr_op_exec(sr_ctx *c, const sr_op *op, int64_t deadline_ns, sr_outcome *out)
{
    cJSON *spec = sr_steps_expand(c, op, op->spec, NULL, out);
    if (!spec) return;
    const cJSON *command = cJSON_GetObjectItemCaseSensitive(spec, "command");
    const cJSON *shell = cJSON_GetObjectItemCaseSensitive(spec, "shell");
    const cJSON *want = cJSON_GetObjectItemCaseSensitive(spec, "exitCode");
    int want_code = cJSON_IsNumber(want) ? (int)want->valuedouble : 0;
    size_t argc = 0;
    char **argv = NULL;
    char **envp = NULL;
    int fds[2] = {-1, -1};
    csl_buf full = CSL_BUF_INIT;
    if (cJSON_IsString(shell)) {
        argv = calloc(4, sizeof *argv);
        if (argv) {
            argv[0] = "/bin/sh";
            argv[1] = "-c";
            argv[2] = shell->valuestring;
            argc = 3;
        }
    } else if (cJSON_IsArray(command)) {
        argv = calloc((size_t)cJSON_GetArraySize(command) + 1, sizeof *argv);
        const cJSON *it;
        cJSON_ArrayForEach(it, command) if (argv && cJSON_IsString(it)) argv[argc++] = it->valuestring;
    }
    if (!argv || !argc) {
        sr_outcome_fail(out, c, op, SR_ERROR, "no command to run");
        goto done;
    }
    for (size_t i = 0; i < argc; i++) csl_buf_printf(&full, "%s%s", i ? " " : "", argv[i]);
    envp = child_env(c, cJSON_GetObjectItemCaseSensitive(spec, "env"));
    if (!envp || pipe2(fds, O_CLOEXEC) < 0) {
        sr_outcome_fail(out, c, op, SR_ERROR, "cannot run %s: %s", csl_buf_str(&full), strerror(errno));
        goto done;
    }
    pid_t pid = fork();
    if (pid < 0) {
        sr_outcome_fail(out, c, op, SR_ERROR, "fork: %s", strerror(errno));
        goto done;
    }
    if (pid == 0) {
        setpgid(0, 0);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0) dup2(devnull, 0);
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        execvpe(argv[0], argv, envp);
        dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    setpgid(pid, pid); /* both sides, so a kill cannot race the child's own call */
    close(fds[1]);
    fds[1] = -1;
    bool timed_out = false, interrupted = false;
    char buf[4096];
    for (;;) {
        int64_t left = deadline_ns - csl_mono_ns();
        if (left <= 0) {
            timed_out = true;
            break;
        }
        if (sr_ctx_interrupted(c)) {
            interrupted = true;
            break;
        }
        struct pollfd p = {fds[0], POLLIN, 0};
        int ms = left / 1000000 > 250 ? 250 : (int)(left / 1000000) + 1;
        int r = poll(&p, 1, ms);
        if (r < 0 && errno != EINTR) break;
        if (r <= 0) continue;
        ssize_t n = read(fds[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break; /* EOF: the command (and its children) closed the pipe */
        keep_tail(&out->output, buf, (size_t)n);
    }
    if (timed_out || interrupted) kill(-pid, SIGKILL);
    /* The pipe closed; the command may still be running (it closed its
     * output, or a child of it holds none): wait for it within the
     * deadline too. */
    int status = 0;
    for (;;) {
        pid_t w = waitpid(pid, &status, timed_out || interrupted ? 0 : WNOHANG);
        if (w == pid || (w < 0 && errno != EINTR)) break;
        if (w == 0 && (csl_mono_ns() >= deadline_ns || sr_ctx_interrupted(c))) {
            if (sr_ctx_interrupted(c))
                interrupted = true;
            else
                timed_out = true;
            kill(-pid, SIGKILL);
            continue;
        }
        if (w == 0) csl_sleep_ns(20000000);
    }
    if (out->output.len > OUTPUT_KEEP) {
        memmove(out->output.data, out->output.data + out->output.len - OUTPUT_KEEP, OUTPUT_KEEP);
        out->output.len = OUTPUT_KEEP;
        out->output.data[OUTPUT_KEEP] = 0;
    }
    if (interrupted) {
        sr_outcome_fail(out, c, op, SR_ERROR, "interrupted; %s killed", csl_buf_str(&full));
    } else if (timed_out) {
        sr_outcome_fail(out, c, op, SR_FAIL, "%s did not finish in time; killed",
                        csl_buf_str(&full));
    } else if (WIFSIGNALED(status)) {
        sr_outcome_fail(out, c, op, SR_FAIL, "%s was killed by signal %d", csl_buf_str(&full),
                        WTERMSIG(status));
    } else if (WEXITSTATUS(status) != want_code) {
        sr_outcome_fail(out, c, op, SR_FAIL, "%s exited with %d, expected %d",
                        csl_buf_str(&full), WEXITSTATUS(status), want_code);
        csl_buf_printf(&out->diff, "exitCode: expected %d, got %d\n", want_code,
                       WEXITSTATUS(status));
    }
done:
    if (fds[0] >= 0) close(fds[0]);
    if (fds[1] >= 0) close(fds[1]);
    free_env(envp);
    free(argv);
    csl_buf_free(&full);
    cJSON_Delete(spec);
}
