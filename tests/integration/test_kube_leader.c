/* test_kube_leader.c — leader election against a real kube-apiserver
 * (CSL_KUBECONFIG), between real processes.
 *
 * The program re-executes itself as the candidate: `test_kube_leader
 * --leader-child KUBECONFIG NS LEASE IDENTITY LEASE_S RENEW_S RETRY_S` runs
 * an elector and prints one line per happening on stdout ("NEWLEADER id",
 * "LEADING", "STOPPED", "LOST", "EXIT"); it stops cleanly when its stdin
 * closes. The tests start two or three of them and check that exactly one
 * leads, that a SIGKILLed leader is replaced once its lease has run out (not
 * before), that a clean stop hands over at once, and, in-process, that a
 * leader whose Lease is taken loses for good, the metric, and bad
 * durations. */
#include "../testutil.h"

#include "csl/clock.h"
#include "csl/events.h"
#include "csl/kube.h"
#include "csl/leader.h"
#include "csl/log.h"
#include "csl/metrics.h"
#include "kube_testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define S_NS 1000000000LL

static const char *self_path;
static const char *kubeconfig_path;
static csl_kube_config cfg;
static csl_kube *kube;
static char ns[64];

static const csl_kube_resource namespaces = {"", "v1", "namespaces", false};
static const csl_kube_resource leases = {"coordination.k8s.io", "v1", "leases", true};

/* ---------------------------------------------------------------- the child */

static void say(const char *what, const char *arg)
{
    /* One write per line: the callbacks run on the elector's thread. */
    char line[300];
    int n = snprintf(line, sizeof line, "%s%s%s\n", what, arg ? " " : "", arg ? arg : "");
    if (write(1, line, (size_t)n) < 0) _exit(3);
}

static void child_started(void *ctx)
{
    say("LEADING", NULL);
}

static void child_stopped(void *ctx)
{
    say("STOPPED", NULL);
}

static void child_new_leader(const char *id, void *ctx)
{
    say("NEWLEADER", id);
}

static int child_main(int argc, char **argv)
{
    if (argc != 9) {
        fprintf(stderr,
                "usage: %s --leader-child KUBECONFIG NS LEASE IDENTITY LEASE_S RENEW_S "
                "RETRY_S\n",
                argv[0]);
        return 2;
    }
    csl_log_setup("leader-child", CSL_LOG_WARN, CSL_LOG_TEXT, 2);
    char err[512];
    csl_kube_config kc;
    if (csl_kubeconfig_load(argv[2], NULL, &kc, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    csl_leader_config lc = {
        .lease_namespace = argv[3],
        .lease_name = argv[4],
        .identity = argv[5],
        .lease_duration_s = atof(argv[6]),
        .renew_deadline_s = atof(argv[7]),
        .retry_period_s = atof(argv[8]),
        .callbacks = {child_started, child_stopped, child_new_leader, NULL},
    };
    csl_leader *l = csl_leader_new(&kc, &lc, err, sizeof err);
    csl_kube_config_free(&kc);
    if (!l) {
        say("INVALID", err);
        return 2;
    }
    if (csl_leader_start(l, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        csl_leader_free(l);
        return 2;
    }
    int rc = 0;
    for (;;) {
        if (csl_leader_lost(l)) {
            /* As an operator does: leadership lost, the process ends. */
            say("LOST", NULL);
            rc = 1;
            break;
        }
        struct pollfd p = {.fd = 0, .events = POLLIN};
        if (poll(&p, 1, 100) > 0) {
            char c[64];
            if (read(0, c, sizeof c) <= 0) break; /* stdin closed: stop */
        }
    }
    csl_leader_free(l);
    say("EXIT", NULL);
    return rc;
}

/* ---------------------------------------------------------------- the parent */

typedef struct child {
    pid_t pid;
    int in_fd, out_fd;
    char id[64];
    char buf[16384];
    size_t len;
    int64_t leading_ns, stopped_ns, lost_ns, exit_ns, invalid_ns;
    char invalid[300];
    char new_leader[64]; /* the last NEWLEADER seen */
    bool eof;
    int status;
    bool reaped;
} child;

static child *spawn(const char *lease, const char *id, const char *lease_s, const char *renew_s,
                    const char *retry_s)
{
    int in[2], out[2];
    /* Close-on-exec: a later child must not hold this one's stdin open. */
    if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC)) return NULL;
    pid_t pid = fork();
    if (pid < 0) return NULL;
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[0]);
        close(in[1]);
        close(out[0]);
        close(out[1]);
        execl(self_path, self_path, "--leader-child", kubeconfig_path, ns, lease, id, lease_s,
              renew_s, retry_s, (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    child *c = calloc(1, sizeof *c);
    c->pid = pid;
    c->in_fd = in[1];
    c->out_fd = out[0];
    snprintf(c->id, sizeof c->id, "%s", id);
    return c;
}

static void parse_lines(child *c, int64_t now)
{
    char *nl;
    while ((nl = memchr(c->buf, '\n', c->len)) != NULL) {
        *nl = '\0';
        const char *line = c->buf;
        if (strcmp(line, "LEADING") == 0 && !c->leading_ns)
            c->leading_ns = now;
        else if (strcmp(line, "STOPPED") == 0 && !c->stopped_ns)
            c->stopped_ns = now;
        else if (strcmp(line, "LOST") == 0 && !c->lost_ns)
            c->lost_ns = now;
        else if (strcmp(line, "EXIT") == 0 && !c->exit_ns)
            c->exit_ns = now;
        else if (strncmp(line, "NEWLEADER ", 10) == 0)
            snprintf(c->new_leader, sizeof c->new_leader, "%s", line + 10);
        else if (strncmp(line, "INVALID ", 8) == 0) {
            c->invalid_ns = now;
            snprintf(c->invalid, sizeof c->invalid, "%s", line + 8);
        }
        size_t used = (size_t)(nl - c->buf) + 1;
        memmove(c->buf, nl + 1, c->len - used);
        c->len -= used;
    }
}

/* Reads whatever the children said within timeout_ms, noting when. */
static void pump(child **cs, int n, int timeout_ms)
{
    struct pollfd p[8];
    for (int i = 0; i < n; i++)
        p[i] = (struct pollfd){.fd = cs[i]->eof ? -1 : cs[i]->out_fd, .events = POLLIN};
    if (poll(p, (nfds_t)n, timeout_ms) <= 0) return;
    int64_t now = csl_mono_ns();
    for (int i = 0; i < n; i++) {
        if (!(p[i].revents & (POLLIN | POLLHUP))) continue;
        child *c = cs[i];
        ssize_t r = read(c->out_fd, c->buf + c->len, sizeof c->buf - 1 - c->len);
        if (r <= 0) {
            c->eof = true;
            continue;
        }
        c->len += (size_t)r;
        parse_lines(c, now);
    }
}

/* Pumps until *field of some child in cs becomes non-zero or timeout_s;
 * returns that child or NULL. */
static child *wait_field(child **cs, int n, size_t offset, double timeout_s)
{
    int64_t end = csl_mono_ns() + (int64_t)(timeout_s * 1e9);
    for (;;) {
        for (int i = 0; i < n; i++)
            if (*(int64_t *)((char *)cs[i] + offset)) return cs[i];
        if (csl_mono_ns() >= end) return NULL;
        pump(cs, n, 20);
    }
}

#define WAIT_LEADING(cs, n, t) wait_field(cs, n, offsetof(child, leading_ns), t)

static void reap(child *c)
{
    if (!c->reaped && waitpid(c->pid, &c->status, 0) == c->pid) c->reaped = true;
}

static void finish(child *c)
{
    if (!c) return;
    if (!c->reaped) {
        kill(c->pid, SIGKILL);
        reap(c);
    }
    close(c->in_fd);
    close(c->out_fd);
    free(c);
}

static cJSON *get_lease(const char *name)
{
    csl_kube_error err;
    cJSON *l = csl_kube_get(kube, &leases, ns, name, NULL, &err);
    if (!l) fprintf(stderr, "get lease %s: %s\n", name, err.message);
    return l;
}

static const char *spec_str(const cJSON *lease, const char *f)
{
    const cJSON *v =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(lease, "spec"), f);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int spec_int(const cJSON *lease, const char *f)
{
    const cJSON *v =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(lease, "spec"), f);
    return cJSON_IsNumber(v) ? v->valueint : -1;
}

static bool is_microtime(const char *s)
{
    int64_t ms;
    return s && strlen(s) == 27 && s[19] == '.' && csl_rfc3339_parse(s, &ms) == 0;
}

/* ---------------------------------------------------------------- suite */

static int suite_init(void)
{
    kubeconfig_path = getenv("CSL_KUBECONFIG");
    if (kt_connect(NULL, &cfg, &kube) != 0) return 1;
    snprintf(ns, sizeof ns, "k4-leader-%llx", (unsigned long long)csl_microtime_now());
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "apiVersion", "v1");
    cJSON_AddStringToObject(o, "kind", "Namespace");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(o, "metadata"), "name", ns);
    csl_kube_error kerr;
    cJSON *made = csl_kube_create(kube, &namespaces, NULL, o, &kerr);
    cJSON_Delete(o);
    if (!made) {
        fprintf(stderr, "cannot create namespace %s: %s\n", ns, kerr.message);
        return 1;
    }
    cJSON_Delete(made);
    return 0;
}

static int suite_cleanup(void)
{
    if (kube && ns[0]) csl_kube_delete(kube, &namespaces, NULL, ns, NULL, NULL);
    csl_kube_free(kube);
    csl_kube_config_free(&cfg);
    return 0;
}

/* Lease 6 s, renew 4 s, retry 1 s: long enough that a takeover which did
 * not wait for the lease (at most one jittered retry, 2.2 s) and one which
 * did (at least ~5 s) cannot be confused. */
static void test_one_leader_then_sigkill(void)
{
    child *cs[2] = {spawn("lease-kill", "cand-a", "6", "4", "1"),
                    spawn("lease-kill", "cand-b", "6", "4", "1")};
    CU_ASSERT_PTR_NOT_NULL_FATAL(cs[0]);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cs[1]);
    child *leader = WAIT_LEADING(cs, 2, 20);
    CU_ASSERT_PTR_NOT_NULL_FATAL(leader);
    child *standby = leader == cs[0] ? cs[1] : cs[0];
    /* Longer than a lease: the standby must stay a standby while the
     * leader renews. */
    int64_t end = csl_mono_ns() + 7 * S_NS;
    while (csl_mono_ns() < end) pump(cs, 2, 50);
    CU_ASSERT_EQUAL(standby->leading_ns, 0);
    CU_ASSERT_STRING_EQUAL(standby->new_leader, leader->id);
    CU_ASSERT_STRING_EQUAL(leader->new_leader, leader->id);
    cJSON *lease = get_lease("lease-kill");
    CU_ASSERT_PTR_NOT_NULL_FATAL(lease);
    CU_ASSERT_STRING_EQUAL(spec_str(lease, "holderIdentity"), leader->id);
    CU_ASSERT_EQUAL(spec_int(lease, "leaseDurationSeconds"), 6);
    CU_ASSERT_EQUAL(spec_int(lease, "leaseTransitions"), 0);
    CU_ASSERT(is_microtime(spec_str(lease, "acquireTime")));
    CU_ASSERT(is_microtime(spec_str(lease, "renewTime")));
    cJSON_Delete(lease);

    /* SIGKILL: no release. The standby takes over once it has seen the
     * Lease unchanged for 6 s. The last renewal was about 1 s before the
     * kill at the earliest, so not before ~5 s (4 s asserted: slack for a
     * loaded machine); at worst the standby saw that renewal one jittered
     * retry (2.2 s) late and notices the expiry one more retry late:
     * 2.2 + 6 + 2.2 = 10.4 s, plus slack. */
    int64_t t0 = csl_mono_ns();
    kill(leader->pid, SIGKILL);
    reap(leader);
    child *next = WAIT_LEADING(&standby, 1, 20);
    CU_ASSERT_PTR_NOT_NULL_FATAL(next);
    double took = (double)(next->leading_ns - t0) / 1e9;
    printf("\n    takeover after SIGKILL: %.2f s (lease 6 s, retry 1 s) ", took);
    CU_ASSERT(took >= 4.0);
    CU_ASSERT(took <= 14.0);
    lease = get_lease("lease-kill");
    CU_ASSERT_STRING_EQUAL(spec_str(lease, "holderIdentity"), standby->id);
    CU_ASSERT_EQUAL(spec_int(lease, "leaseTransitions"), 1);
    cJSON_Delete(lease);

    /* A clean stop: STOPPED (work stops), then release, then EXIT 0. */
    close(standby->in_fd);
    standby->in_fd = open("/dev/null", 0);
    CU_ASSERT_PTR_NOT_NULL(wait_field(&standby, 1, offsetof(child, exit_ns), 10));
    CU_ASSERT(standby->stopped_ns != 0 && standby->stopped_ns <= standby->exit_ns);
    reap(standby);
    CU_ASSERT(WIFEXITED(standby->status) && WEXITSTATUS(standby->status) == 0);
    lease = get_lease("lease-kill");
    CU_ASSERT_STRING_EQUAL(spec_str(lease, "holderIdentity"), "");
    CU_ASSERT_EQUAL(spec_int(lease, "leaseDurationSeconds"), 1);
    cJSON_Delete(lease);
    finish(cs[0]);
    finish(cs[1]);
}

/* Lease 10 s: a standby that took over in well under 10 s can only have
 * done so because the Lease was released. */
static void test_release_hands_over(void)
{
    child *c = spawn("lease-release", "cand-c", "10", "6", "1");
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(WAIT_LEADING(&c, 1, 20));
    child *d = spawn("lease-release", "cand-d", "10", "6", "1");
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    child *both[2] = {c, d};
    int64_t end = csl_mono_ns() + 10 * S_NS;
    while (strcmp(d->new_leader, "cand-c") != 0 && csl_mono_ns() < end) pump(both, 2, 50);
    CU_ASSERT_STRING_EQUAL_FATAL(d->new_leader, "cand-c");

    int64_t t0 = csl_mono_ns();
    close(c->in_fd);
    c->in_fd = open("/dev/null", 0);
    child *next = wait_field(&d, 1, offsetof(child, leading_ns), 15);
    CU_ASSERT_PTR_NOT_NULL_FATAL(next);
    double took = (double)(d->leading_ns - t0) / 1e9;
    printf("\n    takeover after release: %.2f s (lease 10 s, retry 1 s) ", took);
    CU_ASSERT(took < 6.0);
    CU_ASSERT_PTR_NOT_NULL(wait_field(&c, 1, offsetof(child, exit_ns), 10));
    CU_ASSERT(c->stopped_ns != 0);
    cJSON *lease = get_lease("lease-release");
    CU_ASSERT_STRING_EQUAL(spec_str(lease, "holderIdentity"), "cand-d");
    CU_ASSERT_EQUAL(spec_int(lease, "leaseTransitions"), 1);
    CU_ASSERT_EQUAL(spec_int(lease, "leaseDurationSeconds"), 10);
    cJSON_Delete(lease);
    finish(c);
    finish(d);
}

/* In-process: the metric, and a Lease taken from under the leader. */
static int started, stopped;
static char new_leaders[8][64];
static int nnew;

static void on_started(void *ctx)
{
    started++;
}

static void on_stopped(void *ctx)
{
    stopped++;
}

static void on_new(const char *id, void *ctx)
{
    if (nnew < 8) snprintf(new_leaders[nnew++], sizeof new_leaders[0], "%s", id);
}

static void test_lost_for_good(void)
{
    csl_metrics *m = csl_metrics_new();
    char err[512];
    csl_leader_config lc = {.lease_namespace = ns,
                            .lease_name = "lease-lost",
                            .lease_duration_s = 4,
                            .renew_deadline_s = 3,
                            .retry_period_s = 1,
                            .callbacks = {on_started, on_stopped, on_new, NULL},
                            .metrics = m};
    csl_leader *l = csl_leader_new(&cfg, &lc, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    csl_metric *status =
        csl_metrics_gauge(m, "leader_election_master_status", "", CSL_LABELS("name"));
    CU_ASSERT_EQUAL(csl_metric_value(status, CSL_LABELS("lease-lost")), 0);
    CU_ASSERT_EQUAL(csl_leader_start(l, err, sizeof err), 0);
    CU_ASSERT_EQUAL(csl_leader_start(l, err, sizeof err), -1);
    CU_ASSERT_FATAL(csl_leader_wait_leading(l, 20000));
    CU_ASSERT_EQUAL(started, 1);
    CU_ASSERT_EQUAL(csl_metric_value(status, CSL_LABELS("lease-lost")), 1);
    csl_buf out = CSL_BUF_INIT;
    csl_metrics_render(m, &out);
    CU_ASSERT_PTR_NOT_NULL(
        strstr(csl_buf_str(&out), "leader_election_master_status{name=\"lease-lost\"} 1"));
    csl_buf_free(&out);
    char holder[128];
    csl_leader_holder(l, holder, sizeof holder);
    CU_ASSERT_STRING_EQUAL(holder, csl_leader_identity(l));
    CU_ASSERT(nnew >= 1 && strcmp(new_leaders[0], csl_leader_identity(l)) == 0);

    /* Someone else writes the Lease (as a candidate that judged it expired
     * would): the leader sees another holder at its next renewal and
     * stops, at once. */
    /* The leader renews every second, so our write may meet a Conflict:
     * read and write again, as any client would. */
    cJSON *w = NULL;
    csl_kube_error kerr;
    for (int attempt = 0; attempt < 20 && !w; attempt++) {
        cJSON *lease = get_lease("lease-lost");
        CU_ASSERT_PTR_NOT_NULL_FATAL(lease);
        cJSON *spec = cJSON_GetObjectItemCaseSensitive(lease, "spec");
        cJSON_ReplaceItemInObjectCaseSensitive(spec, "holderIdentity",
                                               cJSON_CreateString("intruder"));
        cJSON_ReplaceItemInObjectCaseSensitive(spec, "leaseDurationSeconds", cJSON_CreateNumber(1));
        w = csl_kube_update(kube, &leases, ns, lease, NULL, &kerr);
        cJSON_Delete(lease);
        if (!w && kerr.code != CSL_KUBE_CONFLICT) fprintf(stderr, "update: %s\n", kerr.message);
    }
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    cJSON_Delete(w);
    int64_t end = csl_mono_ns() + 10 * S_NS;
    while (!csl_leader_lost(l) && csl_mono_ns() < end) csl_sleep_ns(20000000);
    CU_ASSERT(csl_leader_lost(l));
    CU_ASSERT_FALSE(csl_leader_is_leading(l));
    CU_ASSERT_EQUAL(stopped, 1);
    CU_ASSERT_EQUAL(csl_metric_value(status, CSL_LABELS("lease-lost")), 0);
    CU_ASSERT(nnew >= 2 && strcmp(new_leaders[nnew - 1], "intruder") == 0);

    /* The intruder's 1 s lease runs out and nobody renews it: the lost
     * leader still does not come back on its own. */
    csl_sleep_ns(4 * S_NS);
    CU_ASSERT_FALSE(csl_leader_is_leading(l));
    CU_ASSERT_FALSE(csl_leader_wait_leading(l, 100));
    cJSON *lease = get_lease("lease-lost");
    CU_ASSERT_STRING_EQUAL(spec_str(lease, "holderIdentity"), "intruder");
    cJSON_Delete(lease);
    csl_leader_free(l);
    CU_ASSERT_EQUAL(stopped, 1); /* not called again */
    csl_metrics_free(m);
}

static void test_in_process_release(void)
{
    started = stopped = 0;
    csl_metrics *m = csl_metrics_new();
    char err[512];
    csl_leader_config lc = {.lease_namespace = ns,
                            .lease_name = "lease-stop",
                            .callbacks = {on_started, on_stopped, NULL, NULL},
                            .metrics = m};
    csl_leader *l = csl_leader_new(&cfg, &lc, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    CU_ASSERT_EQUAL(csl_leader_start(l, err, sizeof err), 0);
    CU_ASSERT_FATAL(csl_leader_wait_leading(l, 20000));
    cJSON *lease = get_lease("lease-stop");
    CU_ASSERT_EQUAL(spec_int(lease, "leaseDurationSeconds"), 15); /* the default */
    cJSON_Delete(lease);
    csl_leader_stop(l);
    CU_ASSERT_EQUAL(stopped, 1);
    CU_ASSERT_FALSE(csl_leader_is_leading(l));
    CU_ASSERT_FALSE(csl_leader_lost(l));
    csl_metric *status =
        csl_metrics_gauge(m, "leader_election_master_status", "", CSL_LABELS("name"));
    CU_ASSERT_EQUAL(csl_metric_value(status, CSL_LABELS("lease-stop")), 0);
    lease = get_lease("lease-stop");
    CU_ASSERT_STRING_EQUAL(spec_str(lease, "holderIdentity"), "");
    CU_ASSERT_EQUAL(spec_int(lease, "leaseDurationSeconds"), 1);
    cJSON_Delete(lease);
    csl_leader_stop(l); /* idempotent */
    csl_leader_free(l);
    csl_metrics_free(m);
}

static void test_invalid_durations(void)
{
    char err[512];
    const struct {
        double lease, renew, retry;
        const char *field;
    } bad[] = {
        {4, 4, 1, "lease_duration_s (4) must be greater than renew_deadline_s (4)"},
        {4, 3, 2.5, "renew_deadline_s (3) must be greater than retry_period_s"},
        {4, 3, -1, "retry_period_s (-1) must be greater than 0"},
        {4.5, 3, 1, "lease_duration_s (4.5) must be a whole number"},
        {-15, 0, 0, "lease_duration_s (-15)"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        csl_leader_config lc = {.lease_namespace = ns,
                                .lease_name = "lease-bad",
                                .lease_duration_s = bad[i].lease,
                                .renew_deadline_s = bad[i].renew,
                                .retry_period_s = bad[i].retry};
        err[0] = '\0';
        CU_ASSERT_PTR_NULL(csl_leader_new(&cfg, &lc, err, sizeof err));
        if (!strstr(err, bad[i].field)) fprintf(stderr, "\n    got: %s\n", err);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, bad[i].field));
    }
    /* And through a candidate process, as an operator's flags would. */
    child *c = spawn("lease-bad", "cand-x", "2", "3", "1");
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_PTR_NOT_NULL(wait_field(&c, 1, offsetof(child, invalid_ns), 10));
    CU_ASSERT_PTR_NOT_NULL(strstr(c->invalid, "lease_duration_s (2)"));
    reap(c);
    CU_ASSERT(WIFEXITED(c->status) && WEXITSTATUS(c->status) == 2);
    finish(c);
    /* Nothing was written. */
    csl_kube_error kerr;
    cJSON *l = csl_kube_get(kube, &leases, ns, "lease-bad", NULL, &kerr);
    CU_ASSERT_PTR_NULL(l);
    CU_ASSERT_EQUAL(kerr.code, CSL_KUBE_NOT_FOUND);
    cJSON_Delete(l);
}

static CU_TestInfo tests[] = {
    {"two processes: one leader; SIGKILL → takeover after the lease", test_one_leader_then_sigkill},
    {"clean stop releases: the standby takes over at once", test_release_hands_over},
    {"a Lease taken away: lost for good, metric 0", test_lost_for_good},
    {"stop releases the Lease; metric; defaults", test_in_process_release},
    {"invalid durations rejected", test_invalid_durations},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"kube leader", suite_init, suite_cleanup, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--leader-child") == 0) return child_main(argc, argv);
    self_path = argv[0];
    csl_log_setup("test_kube_leader", CSL_LOG_WARN, CSL_LOG_TEXT, 2);
    /* A child killed while we write to its stdin must not kill us. */
    signal(SIGPIPE, SIG_IGN);
    return csl_test_run(suites);
}
