/* test_kube_runner_env.c — the scenario runner's environment (env.h)
 * against real processes: its own local plane (kind/local/up.sh in a temp
 * work dir, torn down at the end), real mockcloud and operator replicas.
 *
 * What must hold: the plane comes up with the CRDs Established; a stack of
 * two replicas reconciles a CloudServer to Ready; the leader is found from
 * the Lease and, killed, is replaced by the other replica; stop/start give
 * a clean exit and a fresh ready file; metrics and mockcloud requests round
 * trip; under timeScale 10 the operator's clock (the Lease's renewTime)
 * runs ~10x real time; an --operator-cmd run through a shell stops with
 * exit 0; and stack down leaves no process and no namespace. CSL_KUBECONFIG
 * (the Makefile's shared plane) serves the kubeconfig-mode checks.
 *
 * Environment: CSL_BIN_DIR (mockcloud and cloudserver-operator; default
 * bin), CSL_KUBECONFIG (required), run from the repository root. */
#include "../testutil.h"

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../scenarios/runner/env.h"
#include "csl/clock.h"
#include "csl/kube.h"

static const csl_kube_resource R_NS = {"", "v1", "namespaces", false};
static const csl_kube_resource R_SECRET = {"", "v1", "secrets", true};
static const csl_kube_resource R_LEASE = {"coordination.k8s.io", "v1", "leases", true};
static const csl_kube_resource R_CRD = {"apiextensions.k8s.io", "v1", "customresourcedefinitions",
                                        false};
static const csl_kube_resource R_CS = {"cloudserver.dev", "v1", "cloudservers", true};

static char work_dir[256];
static sr_env *env;
static csl_kube *kube;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static const char *bin_dir(void)
{
    const char *b = getenv("CSL_BIN_DIR");
    return b && *b ? b : "bin";
}

/* PIDs of live processes whose command line mentions needle (our children
 * name the work dir in --port-file / --ready-file). */
static int pids_mentioning(const char *needle, pid_t *out, int max)
{
    int n = 0;
    DIR *d = opendir("/proc");
    struct dirent *de;
    while (d && (de = readdir(d)) && n < max) {
        pid_t pid = (pid_t)atoi(de->d_name);
        if (pid <= 0 || pid == getpid()) continue;
        char path[64], buf[8192];
        snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        size_t len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        for (size_t i = 0; i < len; i++)
            if (buf[i] == '\0') buf[i] = ' ';
        buf[len] = '\0';
        if (strstr(buf, needle)) out[n++] = pid;
    }
    if (d) closedir(d);
    return n;
}

static bool ns_exists(const char *ns)
{
    csl_kube_error ke;
    cJSON *o = csl_kube_get(kube, &R_NS, NULL, ns, NULL, &ke);
    cJSON_Delete(o);
    return o != NULL;
}

static int setup(void)
{
    if (!getenv("CSL_KUBECONFIG")) {
        fprintf(stderr, "CSL_KUBECONFIG is not set: run `make kube-integration`\n");
        return -1;
    }
    snprintf(work_dir, sizeof work_dir, "%s/sr-env-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(work_dir)) return -1;
    sr_env_options o = {.local = true, .work_dir = work_dir, .repo_dir = ".", .bin_dir = bin_dir()};
    char err[4096];
    int64_t t0 = now_ms();
    env = sr_env_up(&o, err, sizeof err);
    if (!env) {
        fprintf(stderr, "sr_env_up: %s\n", err);
        return -1;
    }
    fprintf(stderr, "(local plane up in %lld ms)\n", (long long)(now_ms() - t0));
    kube = sr_env_kube_new(env, err, sizeof err);
    if (!kube) {
        fprintf(stderr, "sr_env_kube_new: %s\n", err);
        return -1;
    }
    return 0;
}

static int teardown(void)
{
    csl_kube_free(kube);
    char kc[512];
    snprintf(kc, sizeof kc, "%s/cluster/kubeconfig", work_dir);
    sr_env_down(env);
    env = NULL;
    /* down.sh removes the kubeconfig: the plane is gone. */
    if (access(kc, F_OK) == 0) fprintf(stderr, "the plane's kubeconfig survived sr_env_down\n");
    if (!getenv("CSL_KEEP_TMP")) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", work_dir);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", work_dir);
    }
    return 0;
}

/* ---------------------------------------------------------------- the plane */

static void test_env_local_plane(void)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(env);
    CU_ASSERT_TRUE(sr_env_is_local(env));
    CU_ASSERT_PTR_NOT_NULL(strstr(sr_env_kubeconfig(env), "/cluster/kubeconfig"));
    csl_kube_error ke;
    cJSON *crd = csl_kube_get(kube, &R_CRD, NULL, "cloudservers.cloudserver.dev", NULL, &ke);
    CU_ASSERT_PTR_NOT_NULL(crd);
    cJSON_Delete(crd);
}

static void test_env_bad_options(void)
{
    char err[1024] = "";
    sr_env_options o = {
        .local = false, .kubeconfig = getenv("CSL_KUBECONFIG"), .work_dir = work_dir};
    CU_ASSERT_PTR_NULL(sr_env_up(&o, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "--mockcloud-url"));

    /* A kubeconfig that does not exist is named. */
    err[0] = '\0';
    sr_env_options o2 = {.local = false,
                         .kubeconfig = "/nonexistent/kubeconfig",
                         .work_dir = work_dir,
                         .mockcloud_url = "http://127.0.0.1:1"};
    CU_ASSERT_PTR_NULL(sr_env_up(&o2, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "/nonexistent/kubeconfig"));

    /* Local programs missing: said before any plane starts. */
    err[0] = '\0';
    sr_env_options o3 = {.local = true, .work_dir = work_dir, .bin_dir = "/nonexistent"};
    CU_ASSERT_PTR_NULL(sr_env_up(&o3, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "/nonexistent/mockcloud"));

    /* Replicas out of range. */
    err[0] = '\0';
    sr_stack_options so = {.scenario = "bad", .replicas = 4, .time_scale = 1};
    CU_ASSERT_PTR_NULL(sr_stack_up(env, &so, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "replicas"));

    /* apiserver restart in kubeconfig mode is refused (checked on a
     * kubeconfig-mode env against the shared plane; it has the CRDs once
     * another test installed them, so only run the check when it came up). */
    sr_env_options o4 = {.local = false,
                         .kubeconfig = getenv("CSL_KUBECONFIG"),
                         .work_dir = work_dir,
                         .mockcloud_url = "http://127.0.0.1:1"};
    sr_env *ke = sr_env_up(&o4, err, sizeof err);
    if (ke) {
        CU_ASSERT_EQUAL(sr_env_restart_apiserver(ke, err, sizeof err), -1);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "--local"));
        sr_env_down(ke);
    } else {
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "cloudserver"));
    }

    /* Kubeconfig mode against our own plane (the CRDs are there): it comes
     * up, is not local, and refuses an API server restart. */
    char kc[400];
    snprintf(kc, sizeof kc, "%s/cluster/kubeconfig", work_dir);
    sr_env_options o5 = {.local = false,
                         .kubeconfig = kc,
                         .work_dir = work_dir,
                         .mockcloud_url = "http://127.0.0.1:1"};
    sr_env *ke2 = sr_env_up(&o5, err, sizeof err);
    if (!ke2) fprintf(stderr, "kubeconfig-mode sr_env_up: %s\n", err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ke2);
    CU_ASSERT_FALSE(sr_env_is_local(ke2));
    CU_ASSERT_STRING_EQUAL(sr_env_kubeconfig(ke2), kc);
    CU_ASSERT_EQUAL(sr_env_restart_apiserver(ke2, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "--local"));
    sr_env_down(ke2);
    CU_ASSERT_EQUAL(access(kc, R_OK), 0); /* a kubeconfig-mode env never touches the plane */
}

/* ---------------------------------------------------------------- a stack */

static int wait_ready_cs(const char *ns, const char *name, long timeout_ms)
{
    int64_t end = now_ms() + timeout_ms;
    while (now_ms() < end) {
        csl_kube_error ke;
        cJSON *o = csl_kube_get(kube, &R_CS, ns, name, NULL, &ke);
        const cJSON *c;
        bool ready = false;
        cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(
                                  cJSON_GetObjectItemCaseSensitive(o, "status"), "conditions"))
        {
            const char *t = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "type"));
            const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "status"));
            if (t && s && !strcmp(t, "Ready") && !strcmp(s, "True")) ready = true;
        }
        cJSON_Delete(o);
        if (ready) return 0;
        sleep_ms(200);
    }
    return -1;
}

static int wait_leader(sr_stack *s, int not, long timeout_ms)
{
    int64_t end = now_ms() + timeout_ms;
    while (now_ms() < end) {
        int l = sr_stack_leader(s);
        if (l >= 0 && l != not ) return l;
        sleep_ms(200);
    }
    return -1;
}

static void test_stack_two_replicas(void)
{
    char err[4096] = "";
    cJSON *timings = cJSON_Parse("{\"create\":\"200ms\",\"delete\":\"100ms\"}");
    sr_stack_options so = {
        .scenario = "env-two", .seed = 7, .time_scale = 1, .replicas = 2, .timings = timings};
    sr_stack *s = sr_stack_up(env, &so, err, sizeof err);
    cJSON_Delete(timings);
    if (!s) fprintf(stderr, "sr_stack_up: %s\n", err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    char ns[64];
    snprintf(ns, sizeof ns, "%s", sr_stack_namespace(s));
    CU_ASSERT_EQUAL(strncmp(ns, "sr-env-two-", 11), 0);
    CU_ASSERT_EQUAL(strlen(ns), 15);
    CU_ASSERT_TRUE(ns_exists(ns));
    CU_ASSERT_EQUAL(sr_stack_replicas(s), 2);
    CU_ASSERT_EQUAL(strncmp(sr_stack_mock_url(s), "http://127.0.0.1:", 17), 0);

    csl_kube_error ke;
    cJSON *sec = csl_kube_get(kube, &R_SECRET, ns, "cloud-credentials", NULL, &ke);
    CU_ASSERT_PTR_NOT_NULL(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(sec, "data"), "token"));
    cJSON_Delete(sec);

    /* Mockcloud round trips, with the admin token on /_mock and the cloud token on /v1. */
    cJSON *reply = NULL;
    CU_ASSERT_EQUAL(sr_mock_request(s, "GET", "/_mock/stats", NULL, &reply, err, sizeof err), 200);
    CU_ASSERT_PTR_NOT_NULL(cJSON_GetObjectItemCaseSensitive(reply, "requests"));
    cJSON_Delete(reply);
    CU_ASSERT_EQUAL(sr_mock_request(s, "GET", "/_mock/timings", NULL, &reply, err, sizeof err),
                    200);
    char *t = cJSON_PrintUnformatted(reply);
    CU_ASSERT_PTR_NOT_NULL(t && strstr(t, "200ms"));
    free(t);
    cJSON_Delete(reply);
    CU_ASSERT_EQUAL(sr_mock_request(s, "GET", "/v1/instances", NULL, &reply, err, sizeof err), 200);
    CU_ASSERT_TRUE(cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(reply, "items")));
    cJSON_Delete(reply);
    CU_ASSERT_EQUAL(sr_mock_request(s, "GET", "/_mock/nothing-here", NULL, NULL, err, sizeof err),
                    404);
    cJSON *bad = cJSON_Parse("{\"create\":\"soon\"}");
    CU_ASSERT_EQUAL(sr_mock_request(s, "PUT", "/_mock/timings", bad, NULL, err, sizeof err), 400);
    cJSON_Delete(bad);

    /* The operator works: a CloudServer becomes Ready. */
    cJSON *cs =
        cJSON_Parse("{\"apiVersion\":\"cloudserver.dev/v1\",\"kind\":\"CloudServer\","
                    "\"metadata\":{\"name\":\"web-0\"},\"spec\":{\"cpu\":1,\"memory\":"
                    "\"1Gi\",\"disk\":\"10Gi\",\"image\":\"debian-12\",\"zone\":\"hk-1a\"}}");
    cJSON *created = csl_kube_create(kube, &R_CS, ns, cs, &ke);
    cJSON_Delete(cs);
    CU_ASSERT_PTR_NOT_NULL(created);
    cJSON_Delete(created);
    CU_ASSERT_EQUAL(wait_ready_cs(ns, "web-0", 60000), 0);

    /* Leader known; its metrics say so. */
    int leader = wait_leader(s, -1, 30000);
    CU_ASSERT_TRUE(leader == 0 || leader == 1);
    int other = 1 - leader;
    csl_buf m = CSL_BUF_INIT;
    CU_ASSERT_EQUAL(sr_stack_metrics(s, -1, &m, err, sizeof err), 0);
    CU_ASSERT_PTR_NOT_NULL(
        m.data &&
        strstr(m.data, "leader_election_master_status{name=\"cloudserver-operator-leader\"} 1"));
    csl_buf_reset(&m);
    CU_ASSERT_EQUAL(sr_stack_metrics(s, other, &m, err, sizeof err), 0);
    CU_ASSERT_PTR_NOT_NULL(
        m.data &&
        strstr(m.data, "leader_election_master_status{name=\"cloudserver-operator-leader\"} 0"));
    csl_buf_free(&m);

    /* Bad actions. */
    CU_ASSERT_EQUAL(sr_stack_operator(s, "explode", 0, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "explode"));
    CU_ASSERT_EQUAL(sr_stack_operator(s, "kill", 2, err, sizeof err), -1);
    CU_ASSERT_EQUAL(sr_stack_operator(s, "start", 0, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "already running"));

    /* Kill the leader: the other replica takes the Lease. */
    int64_t t0 = now_ms();
    CU_ASSERT_EQUAL(sr_stack_operator(s, "kill", -1, err, sizeof err), 0);
    CU_ASSERT_FALSE(sr_stack_replica_running(s, leader));
    CU_ASSERT_TRUE(sr_stack_replica_running(s, other));
    CU_ASSERT_EQUAL(wait_leader(s, leader, 45000), other);
    fprintf(stderr, "(takeover after %lld ms)\n", (long long)(now_ms() - t0));
    CU_ASSERT_EQUAL(sr_stack_operator(s, "kill", leader, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "not running"));
    CU_ASSERT_EQUAL(sr_stack_metrics(s, leader, &m, err, sizeof err), -1);

    /* Start it again (a standby now), stop it cleanly, start once more. */
    CU_ASSERT_EQUAL(sr_stack_operator(s, "start", leader, err, sizeof err), 0);
    CU_ASSERT_TRUE(sr_stack_replica_running(s, leader));
    CU_ASSERT_EQUAL(sr_stack_metrics(s, leader, &m, err, sizeof err), 0);
    csl_buf_free(&m);
    if (sr_stack_operator(s, "stop", leader, err, sizeof err) != 0)
        fprintf(stderr, "stop: %s\n", err);
    CU_ASSERT_FALSE(sr_stack_replica_running(s, leader));
    CU_ASSERT_EQUAL(sr_stack_operator(s, "stop", leader, err, sizeof err), -1);
    CU_ASSERT_EQUAL(sr_stack_operator(s, "restart", leader, err, sizeof err), 0);
    CU_ASSERT_TRUE(sr_stack_replica_running(s, leader));
    CU_ASSERT_EQUAL(sr_stack_leader(s), other);

    /* The exec environment. */
    char **envp = sr_stack_environ(s, "env-two");
    bool has_ns = false, has_url = false;
    char want_ns[96];
    snprintf(want_ns, sizeof want_ns, "CSL_NAMESPACE=%s", ns);
    for (char **e = envp; e && *e; e++) {
        if (!strcmp(*e, want_ns)) has_ns = true;
        if (!strncmp(*e, "CSL_MOCKCLOUD_URL=http://127.0.0.1:", 35)) has_url = true;
    }
    CU_ASSERT_TRUE(has_ns && has_url);
    sr_env_free_environ(envp);

    /* Down: no process of the stack, no namespace (the CloudServer's
     * finalizer is released by the runner). */
    char needle[300];
    snprintf(needle, sizeof needle, "%s/env-two-", work_dir);
    pid_t pids[16];
    int n = pids_mentioning(needle, pids, 16);
    CU_ASSERT_EQUAL(n, 3); /* mockcloud + 2 operators */
    sr_stack_down(s);
    for (int i = 0; i < n; i++) CU_ASSERT_TRUE(kill(pids[i], 0) != 0);
    CU_ASSERT_EQUAL(pids_mentioning(needle, pids, 16), 0);
    CU_ASSERT_FALSE(ns_exists(ns));
    char log[400];
    snprintf(log, sizeof log, "%s/env-two-operator-0.log", work_dir);
    CU_ASSERT_EQUAL(access(log, R_OK), 0);
    snprintf(log, sizeof log, "%s/env-two-mockcloud.log", work_dir);
    CU_ASSERT_EQUAL(access(log, R_OK), 0);
}

/* ---------------------------------------------------------------- libfaketime */

static int64_t renew_ms(const char *ns)
{
    csl_kube_error ke;
    cJSON *l = csl_kube_get(kube, &R_LEASE, ns, "cloudserver-operator-leader", NULL, &ke);
    const char *rt = cJSON_GetStringValue(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(l, "spec"), "renewTime"));
    int64_t ms = -1;
    if (rt && csl_rfc3339_parse(rt, &ms) != 0) ms = -1;
    cJSON_Delete(l);
    return ms;
}

static void test_stack_time_scale(void)
{
    char err[4096] = "";
    sr_stack_options so = {.scenario = "env-fast", .seed = 1, .time_scale = 10, .replicas = 2};
    sr_stack *s = sr_stack_up(env, &so, err, sizeof err);
    if (!s) fprintf(stderr, "sr_stack_up: %s\n", err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    char ns[64];
    snprintf(ns, sizeof ns, "%s", sr_stack_namespace(s));
    CU_ASSERT_TRUE(wait_leader(s, -1, 30000) >= 0);
    /* The leader renews every 2 s of its time: at 10x that is 5 times a real
     * second, and each renewTime is written with its own (fast) clock. */
    int64_t r0 = renew_ms(ns), t0 = now_ms();
    sleep_ms(3000);
    int64_t r1 = renew_ms(ns), t1 = now_ms();
    double ratio = (double)(r1 - r0) / (double)(t1 - t0);
    fprintf(stderr, "(renewTime advanced %lld ms in %lld ms real: x%.1f)\n", (long long)(r1 - r0),
            (long long)(t1 - t0), ratio);
    CU_ASSERT_TRUE(r0 > 0 && r1 > 0);
    CU_ASSERT_TRUE(ratio > 6 && ratio < 14);
    sr_stack_down(s);
    CU_ASSERT_FALSE(ns_exists(ns));
}

/* ---------------------------------------------------------------- --operator-cmd */

static void test_operator_cmd_shell(void)
{
    /* A second env on the same work dir finds the plane already up (up.sh
     * changes nothing) and, with keep, leaves it to the first. */
    char cmd[600], err[4096] = "";
    char *abs = realpath(bin_dir(), NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(abs);
    /* Not a simple command: it stays under a shell, so stop must signal the
     * operator's own PID (from its ready file) to get its exit status. */
    snprintf(cmd, sizeof cmd, "cd / && %s/cloudserver-operator", abs);
    free(abs);
    sr_env_options o = {.local = true,
                        .work_dir = work_dir,
                        .repo_dir = ".",
                        .bin_dir = bin_dir(),
                        .operator_cmd = cmd,
                        .keep = true};
    sr_env *e2 = sr_env_up(&o, err, sizeof err);
    if (!e2) fprintf(stderr, "sr_env_up: %s\n", err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(e2);
    sr_stack_options so = {.scenario = "env-cmd", .seed = 1, .time_scale = 1, .replicas = 1};
    sr_stack *s = sr_stack_up(e2, &so, err, sizeof err);
    if (!s) fprintf(stderr, "sr_stack_up: %s\n", err);
    CU_ASSERT_PTR_NOT_NULL(s);
    if (s) {
        char ns[64];
        snprintf(ns, sizeof ns, "%s", sr_stack_namespace(s));
        CU_ASSERT_EQUAL(sr_stack_leader(s), 0);
        char needle[300];
        snprintf(needle, sizeof needle, "%s/env-cmd-operator", work_dir);
        pid_t pids[8];
        CU_ASSERT_EQUAL(pids_mentioning(needle, pids, 8), 2); /* the shell and the operator */
        int rc = sr_stack_operator(s, "stop", 0, err, sizeof err);
        if (rc != 0) fprintf(stderr, "stop: %s\n", err);
        CU_ASSERT_EQUAL(rc, 0);
        CU_ASSERT_EQUAL(pids_mentioning(needle, pids, 8), 0);
        CU_ASSERT_EQUAL(sr_stack_operator(s, "start", 0, err, sizeof err), 0);
        CU_ASSERT_EQUAL(sr_stack_operator(s, "kill", 0, err, sizeof err), 0);
        /* SIGKILL reaches the whole group: no operator left behind the shell. */
        CU_ASSERT_EQUAL(pids_mentioning(needle, pids, 8), 0);
        sr_stack_down(s);
        CU_ASSERT_TRUE(ns_exists(ns)); /* keep */
    }
    sr_env_down(e2);
}

static CU_TestInfo env_tests[] = {
    {"local plane up with the CRDs", test_env_local_plane},
    {"bad options are refused with the reason", test_env_bad_options},
    {"a two-replica stack: Ready, leader, kill, stop/start, down", test_stack_two_replicas},
    {"timeScale 10 runs the operator's clock 10x", test_stack_time_scale},
    {"--operator-cmd under a shell", test_operator_cmd_shell},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"runner env", setup, teardown, NULL, NULL, env_tests},
    CU_SUITE_INFO_NULL,
};

CSL_TEST_MAIN(suites)
