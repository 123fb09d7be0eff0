/* env_proc.c — the runner's child processes: one spawner thread forks
 * them all (see env_proc.h for why), any thread waits for and stops them by
 * PID. The child only makes async-signal-safe calls between fork and exec:
 * everything it needs (argv, envp, the open log) is ready before fork. */
#include "env_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* ---------------------------------------------------------------- spawner */

typedef struct spawn_req {
    char *const *argv;
    char *const *envp;
    int log_fd;
    pid_t pid;
    int err; /* errno of a failed fork */
    bool done;
    struct spawn_req *next;
} spawn_req;

struct sr_ep_spawner {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t work; /* a request queued or stop */
    pthread_cond_t done; /* a request finished */
    spawn_req *head, *tail;
    bool stop;
    pid_t self;
};

static void child_exec(const spawn_req *r, pid_t parent)
{
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    /* The parent thread may have gone before prctl took effect. */
    if (getppid() != parent) _exit(127);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (int s = 1; s < 32; s++)
        if (s != SIGKILL && s != SIGSTOP) signal(s, SIG_DFL);
    int in = open("/dev/null", O_RDONLY);
    if (in < 0 || dup2(in, 0) < 0 || dup2(r->log_fd, 1) < 0 || dup2(r->log_fd, 2) < 0) _exit(127);
    if (syscall(SYS_close_range, 3U, ~0U, 0U) != 0)
        for (int fd = 3; fd < 4096; fd++) close(fd);
    execve(r->argv[0], r->argv, r->envp ? r->envp : environ);
    static const char msg[] = "scenario-runner: exec failed: ";
    const char *why = strerror(errno); /* not async-signal-safe in theory; last words only */
    if (write(2, msg, sizeof msg - 1) < 0 || write(2, r->argv[0], strlen(r->argv[0])) < 0 ||
        write(2, ": ", 2) < 0 || write(2, why, strlen(why)) < 0 || write(2, "\n", 1) < 0)
        _exit(127);
    _exit(127);
}

static void *spawner_main(void *arg)
{
    sr_ep_spawner *sp = arg;
    pthread_mutex_lock(&sp->mu);
    for (;;) {
        while (!sp->head && !sp->stop) pthread_cond_wait(&sp->work, &sp->mu);
        if (!sp->head) break;
        spawn_req *r = sp->head;
        sp->head = r->next;
        if (!sp->head) sp->tail = NULL;
        pthread_mutex_unlock(&sp->mu);

        pid_t pid = fork();
        if (pid == 0) child_exec(r, sp->self);
        int e = errno;

        pthread_mutex_lock(&sp->mu);
        r->pid = pid;
        r->err = pid < 0 ? e : 0;
        r->done = true;
        pthread_cond_broadcast(&sp->done);
    }
    pthread_mutex_unlock(&sp->mu);
    return NULL;
}

sr_ep_spawner *sr_ep_spawner_new(char *err, size_t errsz)
{
    sr_ep_spawner *sp = calloc(1, sizeof *sp);
    if (!sp) {
        snprintf(err, errsz, "out of memory");
        return NULL;
    }
    sp->self = getpid();
    pthread_mutex_init(&sp->mu, NULL);
    pthread_cond_init(&sp->work, NULL);
    pthread_cond_init(&sp->done, NULL);
    /* The spawner takes no signals: they belong to the runner's own threads. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&sp->th, NULL, spawner_main, sp);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        snprintf(err, errsz, "cannot start the process spawner thread: %s", strerror(rc));
        pthread_mutex_destroy(&sp->mu);
        pthread_cond_destroy(&sp->work);
        pthread_cond_destroy(&sp->done);
        free(sp);
        return NULL;
    }
    return sp;
}

void sr_ep_spawner_free(sr_ep_spawner *sp)
{
    if (!sp) return;
    pthread_mutex_lock(&sp->mu);
    sp->stop = true;
    pthread_cond_broadcast(&sp->work);
    pthread_mutex_unlock(&sp->mu);
    pthread_join(sp->th, NULL);
    pthread_mutex_destroy(&sp->mu);
    pthread_cond_destroy(&sp->work);
    pthread_cond_destroy(&sp->done);
    free(sp);
}

pid_t sr_ep_spawn(sr_ep_spawner *sp, char *const *argv, char *const *envp, const char *log_path,
                  bool append, char *err, size_t errsz)
{
    int fd = open(log_path, O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC), 0644);
    if (fd < 0) {
        snprintf(err, errsz, "cannot open the log %s: %s", log_path, strerror(errno));
        return -1;
    }
    spawn_req r = {.argv = argv, .envp = envp, .log_fd = fd};
    pthread_mutex_lock(&sp->mu);
    if (sp->stop) {
        pthread_mutex_unlock(&sp->mu);
        close(fd);
        snprintf(err, errsz, "the environment is shutting down");
        return -1;
    }
    if (sp->tail)
        sp->tail->next = &r;
    else
        sp->head = &r;
    sp->tail = &r;
    pthread_cond_signal(&sp->work);
    while (!r.done) pthread_cond_wait(&sp->done, &sp->mu);
    pthread_mutex_unlock(&sp->mu);
    close(fd);
    if (r.pid < 0) {
        snprintf(err, errsz, "fork for %s: %s", argv[0], strerror(r.err));
        return -1;
    }
    return r.pid;
}

/* ---------------------------------------------------------------- waiting */

int64_t sr_ep_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sr_ep_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

int sr_ep_wait(pid_t pid, long timeout_ms, int *status)
{
    if (pid <= 0) return -1;
    int64_t end = sr_ep_now_ms() + timeout_ms;
    long pause_ms = 5;
    for (;;) {
        /* Look without reaping: while pid is a zombie its number (and its
         * group's) cannot be reused, so the group can be killed safely. */
        siginfo_t si;
        memset(&si, 0, sizeof si);
        if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (si.si_pid == pid) {
            kill(-pid, SIGKILL); /* what it left in its group (a shell's child) */
            int st;
            while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
            }
            if (status) *status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            return 1;
        }
        if (sr_ep_now_ms() >= end) return 0;
        sr_ep_sleep_ms(pause_ms);
        if (pause_ms < 50) pause_ms *= 2;
    }
}

int sr_ep_stop(pid_t pid, bool group, long grace_ms, int *status)
{
    if (pid <= 0) return -1;
    kill(group ? -pid : pid, SIGTERM);
    int rc = sr_ep_wait(pid, grace_ms, status);
    if (rc != 0) return rc;
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
    rc = sr_ep_wait(pid, 5000, status);
    return rc == 1 ? 2 : rc;
}

void sr_ep_kill(pid_t pid)
{
    if (pid <= 0) return;
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
    int st;
    sr_ep_wait(pid, 5000, &st);
}

int sr_ep_run(sr_ep_spawner *sp, char *const *argv, char *const *envp, const char *log_path,
              long timeout_ms, char *err, size_t errsz)
{
    pid_t pid = sr_ep_spawn(sp, argv, envp, log_path, true, err, errsz);
    if (pid < 0) return -1;
    int st;
    if (sr_ep_wait(pid, timeout_ms, &st) == 1) return st;
    sr_ep_kill(pid);
    snprintf(err, errsz, "%s did not finish in %ld s (killed; log: %s)", argv[0], timeout_ms / 1000,
             log_path);
    return -1;
}

/* ---------------------------------------------------------------- environ */

static size_t name_len(const char *kv)
{
    const char *eq = strchr(kv, '=');
    return eq ? (size_t)(eq - kv) : strlen(kv);
}

char **sr_ep_environ_with(char *const *set, size_t nset)
{
    size_t n = 0;
    for (char **e = environ; e && *e; e++) n++;
    char **out = calloc(n + nset + 1, sizeof *out);
    if (!out) return NULL;
    size_t k = 0;
    for (char **e = environ; e && *e; e++) {
        bool replaced = false;
        for (size_t i = 0; i < nset && !replaced; i++) {
            size_t l = name_len(set[i]);
            replaced = name_len(*e) == l && strncmp(*e, set[i], l) == 0;
        }
        if (replaced) continue;
        if (!(out[k++] = strdup(*e))) goto oom;
    }
    for (size_t i = 0; i < nset; i++)
        if (!(out[k++] = strdup(set[i]))) goto oom;
    out[k] = NULL;
    return out;
oom:
    sr_ep_environ_free(out);
    return NULL;
}

void sr_ep_environ_free(char **envp)
{
    if (!envp) return;
    for (char **e = envp; *e; e++) free(*e);
    free(envp);
}

/* ---------------------------------------------------------------- files */

char *sr_ep_file_tail(const char *path, size_t maxlen)
{
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    long start = 0;
    if (fseek(f, 0, SEEK_END) == 0) {
        long size = ftell(f);
        if (size > (long)maxlen) start = size - (long)maxlen;
    }
    fseek(f, start, SEEK_SET);
    char *buf = malloc(maxlen + 1);
    if (!buf) {
        fclose(f);
        return NULL;
    }
    size_t n = fread(buf, 1, maxlen, f);
    fclose(f);
    buf[n] = '\0';
    if (start > 0) {
        char *nl = strchr(buf, '\n');
        if (nl) memmove(buf, nl + 1, strlen(nl + 1) + 1);
    }
    return buf;
}
