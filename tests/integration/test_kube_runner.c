/* test_kube_runner.c — bin/scenario-runner end to end on a local plane of
 * its own (--local): fixture scenarios under tests/integration/scenarios/
 * pass, fail on purpose, are interrupted, are invalid, or meet an operator
 * broken on purpose (--break no-failover, docs/operator.md); the checks are
 * the exit codes and what junit.xml and report.json say.
 *
 * Environment: CSL_BIN_DIR (where scenario-runner, mockcloud and the
 * operator are; default "bin"); run from the repository root. Each run
 * brings its own plane up and down, so the test needs no CSL_KUBECONFIG. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "../testutil.h"
#include "csl/clock.h"

#define FIX "tests/integration/scenarios"

static char report_dir[256];

static const char *bin_dir(void)
{
    const char *d = getenv("CSL_BIN_DIR");
    return d && *d ? d : "bin";
}

/* Starts the runner with args; its output goes to log. Returns the PID. */
static pid_t start_runner(const char *const *args, const char *log)
{
    char exe[512];
    snprintf(exe, sizeof exe, "%s/scenario-runner", bin_dir());
    char *argv[40];
    int n = 0;
    argv[n++] = exe;
    for (size_t i = 0; args[i] && n < 38; i++) argv[n++] = (char *)args[i];
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execv(exe, argv);
        _exit(127);
    }
    return pid;
}

/* Waits up to limit_s for pid; its exit code, or -1 (killed, timeout). */
static int wait_runner(pid_t pid, int limit_s)
{
    int64_t deadline = csl_mono_ns() + (int64_t)limit_s * 1000000000;
    int st;
    for (;;) {
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        if (csl_mono_ns() > deadline) {
            kill(pid, SIGTERM);
            waitpid(pid, &st, 0);
            return -1;
        }
        csl_sleep_ns(100000000);
    }
}

static int run_runner(const char *const *args, const char *log, int limit_s)
{
    int rc = wait_runner(start_runner(args, log), limit_s);
    if (rc != 0) {
        /* Show what it said: a failing assertion then explains itself. */
        char cmd[600];
        snprintf(cmd, sizeof cmd, "tail -n 40 %s >&2", log);
        if (system(cmd)) {
        }
    }
    return rc;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) n = 0;
    if (b) b[n] = 0;
    fclose(f);
    return b;
}

static cJSON *load_report(const char *run_id)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s/report.json", report_dir, run_id);
    char *t = slurp(p);
    cJSON *j = t ? cJSON_Parse(t) : NULL;
    free(t);
    return j;
}

static const cJSON *scenario_of(const cJSON *rep, const char *name)
{
    const cJSON *s;
    cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(rep, "scenarios"))
    {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(s, "name");
        if (cJSON_IsString(n) && !strcmp(n->valuestring, name)) return s;
    }
    return NULL;
}

static const char *str_of(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static const cJSON *step_of(const cJSON *sc, const char *name)
{
    const cJSON *s;
    cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(sc, "steps")) if (!strcmp(str_of(s, "name"), name)) return s;
    return NULL;
}

/* ---------------------------------------------------------------- tests */

static void test_validate_invalid(void)
{
    const char *a[] = {"validate", FIX "/invalid", NULL};
    char log[300];
    snprintf(log, sizeof log, "%s/validate.log", report_dir);
    CU_ASSERT_EQUAL(run_runner(a, log, 30), 2);
    char *out = slurp(log);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "invalid/bad.yaml:5:5:"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "frobnicate"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "invalid/bad.yaml:7:"));
    free(out);
    /* run refuses the same, before touching anything: no report dir. */
    const char *r[] = {"run", "--report-dir", report_dir, "--run-id", "never", FIX "/invalid", NULL};
    CU_ASSERT_EQUAL(run_runner(r, log, 30), 2);
    char p[400];
    snprintf(p, sizeof p, "%s/never", report_dir);
    struct stat st;
    CU_ASSERT_NOT_EQUAL(stat(p, &st), 0);
}

static void test_env_failure_exit_3(void)
{
    const char *a[] = {"run", "--kubeconfig", "/nonexistent/kubeconfig", "--mockcloud-url",
                       "http://127.0.0.1:1", "--report-dir", report_dir, "--run-id", "noenv",
                       FIX "/fail", NULL};
    char log[300];
    snprintf(log, sizeof log, "%s/noenv.log", report_dir);
    CU_ASSERT_EQUAL(run_runner(a, log, 60), 3);
    char *out = slurp(log);
    CU_ASSERT_PTR_NOT_NULL(out && strstr(out, "/nonexistent/kubeconfig"));
    free(out);
}

static void test_pass_and_fail(void)
{
    const char *a[] = {"run", "--parallel", "2", "--report-dir", report_dir, "--run-id", "mixed",
                       FIX "/pass", FIX "/fail", NULL};
    char log[300];
    snprintf(log, sizeof log, "%s/mixed.log", report_dir);
    CU_ASSERT_EQUAL(run_runner(a, log, 420), 1);
    cJSON *rep = load_report("mixed");
    CU_ASSERT_PTR_NOT_NULL_FATAL(rep);
    const cJSON *basic = scenario_of(rep, "it-basic");
    const cJSON *fo = scenario_of(rep, "it-failover");
    const cJSON *bad = scenario_of(rep, "it-failing");
    CU_ASSERT_PTR_NOT_NULL_FATAL(basic);
    CU_ASSERT_PTR_NOT_NULL_FATAL(fo);
    CU_ASSERT_PTR_NOT_NULL_FATAL(bad);
    CU_ASSERT_STRING_EQUAL(str_of(basic, "status"), "pass");
    CU_ASSERT_STRING_EQUAL(str_of(fo, "status"), "pass");
    CU_ASSERT_STRING_EQUAL(str_of(bad, "status"), "fail");
    /* The cleanup op registered by "guarded fault" ran and passed. */
    const cJSON *cl = step_of(basic, "cleanup");
    CU_ASSERT_PTR_NOT_NULL(cl);
    if (cl) CU_ASSERT_STRING_EQUAL(str_of(cl, "status"), "pass");
    const cJSON *never = step_of(bad, "never");
    CU_ASSERT_PTR_NOT_NULL_FATAL(never);
    CU_ASSERT_STRING_EQUAL(str_of(never, "status"), "fail");
    CU_ASSERT_PTR_NOT_NULL(strstr(str_of(never, "message"), "failing.yaml:"));
    char *rendered = cJSON_PrintUnformatted(never);
    CU_ASSERT_PTR_NOT_NULL(rendered && strstr(rendered, "status.phase: expected"));
    free(rendered);
    const cJSON *sk = step_of(bad, "skipped");
    CU_ASSERT_PTR_NOT_NULL(sk);
    if (sk) CU_ASSERT_STRING_EQUAL(str_of(sk, "status"), "skip");
    cJSON_Delete(rep);

    char p[400];
    snprintf(p, sizeof p, "%s/mixed/junit.xml", report_dir);
    char *junit = slurp(p);
    CU_ASSERT_PTR_NOT_NULL_FATAL(junit);
    CU_ASSERT_PTR_NOT_NULL(strstr(junit, "<testsuite"));
    CU_ASSERT_PTR_NOT_NULL(strstr(junit, "<failure"));
    CU_ASSERT_PTR_NOT_NULL(strstr(junit, "failing.yaml:"));
    free(junit);
    snprintf(p, sizeof p, "%s/latest", report_dir);
    char target[64] = "";
    ssize_t n = readlink(p, target, sizeof target - 1);
    if (n > 0) target[n] = 0;
    CU_ASSERT_STRING_EQUAL(target, "mixed");
}

static void test_broken_operator_fails(void)
{
    const char *a[] = {"run", "--break", "no-failover", "--report-dir", report_dir, "--run-id",
                       "broken", FIX "/pass/failover.yaml", NULL};
    char log[300];
    snprintf(log, sizeof log, "%s/broken.log", report_dir);
    CU_ASSERT_EQUAL(run_runner(a, log, 300), 1);
    cJSON *rep = load_report("broken");
    CU_ASSERT_PTR_NOT_NULL_FATAL(rep);
    const cJSON *fo = scenario_of(rep, "it-failover");
    CU_ASSERT_PTR_NOT_NULL_FATAL(fo);
    CU_ASSERT_STRING_EQUAL(str_of(fo, "status"), "fail");
    const cJSON *st = step_of(fo, "failed over");
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT_STRING_EQUAL(str_of(st, "status"), "fail");
    CU_ASSERT_PTR_NOT_NULL(strstr(str_of(st, "message"), "failover.yaml:"));
    CU_ASSERT_PTR_NOT_NULL(strstr(str_of(st, "message"), "failoverCount"));
    const cJSON *run = cJSON_GetObjectItemCaseSensitive(rep, "run");
    CU_ASSERT_STRING_EQUAL(str_of(run, "breakMode"), "no-failover");
    cJSON_Delete(rep);
}

static void test_interrupt_exit_130(void)
{
    const char *a[] = {"run", "--report-dir", report_dir, "--run-id", "intr", FIX "/interrupt", NULL};
    char log[300];
    snprintf(log, sizeof log, "%s/intr.log", report_dir);
    pid_t pid = start_runner(a, log);
    /* Interrupt once the long sleep is under way. */
    int64_t deadline = csl_mono_ns() + 120LL * 1000000000;
    bool started = false;
    while (!started && csl_mono_ns() < deadline) {
        csl_sleep_ns(300000000);
        char *out = slurp(log);
        started = out && strstr(out, "START it-long");
        free(out);
    }
    CU_ASSERT_FATAL(started);
    csl_sleep_ns(3000000000LL);
    int64_t t0 = csl_mono_ns();
    kill(pid, SIGINT);
    CU_ASSERT_EQUAL(wait_runner(pid, 120), 130);
    CU_ASSERT(csl_mono_ns() - t0 < 100LL * 1000000000); /* not the 4-minute sleep */
    cJSON *rep = load_report("intr");
    CU_ASSERT_PTR_NOT_NULL_FATAL(rep);
    const cJSON *sc = scenario_of(rep, "it-long");
    CU_ASSERT_PTR_NOT_NULL_FATAL(sc);
    CU_ASSERT_STRING_EQUAL(str_of(sc, "status"), "error");
    const cJSON *sl = step_of(sc, "long sleep");
    CU_ASSERT_PTR_NOT_NULL(sl && strstr(str_of(sl, "message"), "interrupted"));
    cJSON_Delete(rep);
}

static int suite_init(void)
{
    snprintf(report_dir, sizeof report_dir, "/tmp/csl-runner-it.%d", (int)getpid());
    return mkdir(report_dir, 0755) == 0 || errno == EEXIST ? 0 : -1;
}

static int suite_clean(void)
{
    if (getenv("CSL_KEEP_REPORTS")) return 0;
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", report_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static CU_TestInfo tests[] = {
    {"validate and run refuse an invalid scenario (exit 2)", test_validate_invalid},
    {"an unreachable target exits 3", test_env_failure_exit_3},
    {"passing and failing scenarios: exit 1, junit and json", test_pass_and_fail},
    {"--break no-failover makes the failover scenario fail", test_broken_operator_fails},
    {"SIGINT stops, cleans up, reports, exits 130", test_interrupt_exit_130},
    CU_TEST_INFO_NULL,
};
static CU_SuiteInfo suites[] = {
    {"scenario-runner", suite_init, suite_clean, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

CSL_TEST_MAIN(suites)
