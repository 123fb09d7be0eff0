/* env_proc.h — starting, watching and stopping the runner's child
 * processes (private to env.c; prefix sr_ep_).
 *
 * One idea: every child is forked by one long-lived spawner thread. The
 * kernel's PR_SET_PDEATHSIG fires when the *thread* that forked a child
 * ends, not the process, so a child forked by a scenario's worker thread
 * would be SIGKILLed when that worker finishes. Forking from a thread that
 * lives exactly as long as the environment gives PDEATHSIG the meaning we
 * want: no child outlives the runner (or sr_env_down). Any thread may then
 * wait for, signal and reap a child by its PID. */
#ifndef SR_ENV_PROC_H
#define SR_ENV_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct sr_ep_spawner sr_ep_spawner;

/* API */

/* Starts the spawner thread. NULL with err. */
sr_ep_spawner *sr_ep_spawner_new(char *err, size_t errsz);
/* Stops the thread (children it started then get SIGKILL from the kernel
 * unless already reaped). NULL is fine. */
void sr_ep_spawner_free(sr_ep_spawner *sp);

/* Starts argv[0] (a path; argv NULL-terminated) with envp (NULL: environ),
 * stdin /dev/null, stdout and stderr to log_path (appended when append,
 * else truncated), every other descriptor closed, signals unblocked and
 * default, in a process group of its own (so the whole group can be
 * signalled), with PR_SET_PDEATHSIG=SIGKILL. Returns the PID, or -1 with
 * err (the log cannot be opened, fork failed). Thread-safe. An exec that
 * fails shows as exit status 127 with the reason in the log. */
pid_t sr_ep_spawn(sr_ep_spawner *sp, char *const *argv, char *const *envp, const char *log_path,
                  bool append, char *err, size_t errsz);

/* Waits up to timeout_ms (0: just look) for pid to exit; once it has, kills
 * whatever is left in its process group (an --operator-cmd shell's child)
 * and reaps it. Returns 1 when it has exited (*status: the exit code, or
 * 128 + signal), 0 when it still runs, -1 when pid is not our child
 * (already reaped). */
int sr_ep_wait(pid_t pid, long timeout_ms, int *status);

/* SIGTERM to pid (or the group when group), then sr_ep_wait up to
 * grace_ms; then SIGKILL to the group and a 5 s wait. Returns 1 with
 * *status when it exited within the grace, 2 when it had to be killed, -1
 * when it was not our child. */
int sr_ep_stop(pid_t pid, bool group, long grace_ms, int *status);
/* SIGKILL to the process group of pid and reap pid (bounded 5 s). */
void sr_ep_kill(pid_t pid);

/* A copy of environ with each "NAME=value" of set replacing or adding that
 * NAME; NULL-terminated, every string owned. NULL on allocation failure.
 * Free with sr_ep_environ_free. */
char **sr_ep_environ_with(char *const *set, size_t nset);
void sr_ep_environ_free(char **envp);

/* Runs argv to its end (bounded by timeout_ms; then it is killed) with
 * envp, output appended to log_path. Returns the exit status (128+signal
 * when killed), or -1 with err when it could not be started or timed out. */
int sr_ep_run(sr_ep_spawner *sp, char *const *argv, char *const *envp, const char *log_path,
              long timeout_ms, char *err, size_t errsz);

/* Milliseconds of the runner's monotonic clock (never faked). */
int64_t sr_ep_now_ms(void);
void sr_ep_sleep_ms(long ms);
/* The last maxlen bytes of path (from its last line start), malloc'd, or NULL. */
char *sr_ep_file_tail(const char *path, size_t maxlen);

#endif
