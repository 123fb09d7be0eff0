/* main.c — the cloudserver-operator program: flags, logging, signals, exit
 * codes. The work is in manager.c.
 *
 * Design idea: SIGTERM and SIGINT are blocked in every thread before any
 * starts and taken by the main thread with sigtimedwait, so the shutdown is
 * ordinary sequential code, never a signal handler.
 *
 * Memory: the process sets glibc malloc's policy before any thread starts
 * (see memory_policy below): two arenas, a fixed mmap threshold, and a
 * thread that hands freed pages back to the kernel once RSS has grown.
 *
 * Exit codes: 0 after a signal-driven shutdown (and for --help/--version);
 * 1 when start-up fails or leadership is lost; 2 for a bad command line. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "csl/log.h"
#include "csl/units.h"
#include "manager.h"

static const char usage_text[] =
    "Usage: cloudserver-operator [FLAGS]\n"
    "A Kubernetes operator for CloudServer and CloudServerSet (cloudserver.dev).\n"
    "\n"
    "  --kubeconfig F                  kubeconfig file (default: $KUBECONFIG, else\n"
    "                                  ~/.kube/config, else the in-cluster config)\n"
    "  --context C                     kubeconfig context (default: current-context)\n"
    "  --namespace NS                  watch only NS (default: all namespaces)\n"
    "  --leader-elect                  elect a leader through a Lease; only the leader\n"
    "                                  reconciles (default: off)\n"
    "  --leader-election-namespace NS  the Lease's namespace (default: the kubeconfig\n"
    "                                  context's / in-cluster namespace)\n"
    "  --leader-election-id NAME       the Lease's name (default cloudserver-operator-leader)\n"
    "  --metrics-bind-address ADDR     serve /metrics on ADDR; \"0\" or \":0\" disables\n"
    "                                  (default :8080)\n"
    "  --health-probe-bind-address ADDR  serve /healthz and /readyz on ADDR; \"0\"\n"
    "                                  disables (default :8081)\n"
    "  --max-concurrent-reconciles N   workers per controller (default 4)\n"
    "  --cloud-endpoint URL            the cloud API (default http://127.0.0.1:8090)\n"
    "  --cloud-credentials-secret NS/NAME  Secret whose key \"token\" is the cloud's\n"
    "                                  bearer token (default "
    "cloudserver-system/cloud-credentials)\n"
    "  --sync-period D                 resync every object this often, to find drift\n"
    "                                  (default 10m)\n"
    "  --rate-limiter-base-delay D     first per-object retry delay of a failed write\n"
    "                                  (default 5ms)\n"
    "  --rate-limiter-max-delay D      cap of that delay (default 1000s)\n"
    "  --cloud-timeout D               whole-request timeout of a cloud call (default 30s)\n"
    "  --zones Z1,Z2,...               fallback zones for a replacement whose zone is out\n"
    "                                  of capacity; only those of the spec zone's region\n"
    "                                  are used (default: none)\n"
    "  --ready-file F                  test aid: once the caches have synced, write\n"
    "                                  "
    "{\"metrics\":\"HOST:PORT\",\"health\":\"HOST:PORT\",\"pid\":N}\n"
    "                                  to F atomically (default: none)\n"
    "  --log-format FMT                text | json (default text)\n"
    "  --log-level LEVEL               debug | info | warn | error (default info)\n"
    "  --help                          show this help and exit\n"
    "  --version                       show the version and exit\n"
    "\n"
    "ADDR is \":PORT\" (every address), \"HOST:PORT\", or \"0\"; port 0 picks a free one.\n"
    "D is a duration such as 500ms, 30s, 10m, 1h30m.\n"
    "Signals: SIGTERM or SIGINT stops taking work, lets running reconciles finish\n"
    "(at most 30s), releases the Lease and exits 0.\n"
    "Environment: CSL_OPERATOR_BREAK=no-finalizer,no-idempotency-key,no-failover\n"
    "breaks the operator on purpose (TEST ONLY: for mutation runs of the scenarios).\n"
    "Reference: docs/operator.md\n";

enum {
    OPT_KUBECONFIG = 256,
    OPT_CONTEXT,
    OPT_NAMESPACE,
    OPT_LEADER_ELECT,
    OPT_LEADER_NS,
    OPT_LEADER_ID,
    OPT_METRICS,
    OPT_HEALTH,
    OPT_MAX_CONCURRENT,
    OPT_CLOUD_ENDPOINT,
    OPT_CREDS,
    OPT_SYNC_PERIOD,
    OPT_RL_BASE,
    OPT_RL_MAX,
    OPT_CLOUD_TIMEOUT,
    OPT_READY_FILE,
    OPT_ZONES,
    OPT_LOG_FORMAT,
    OPT_LOG_LEVEL,
    OPT_HELP,
    OPT_VERSION,
};

static const struct option long_opts[] = {
    {"kubeconfig", required_argument, NULL, OPT_KUBECONFIG},
    {"context", required_argument, NULL, OPT_CONTEXT},
    {"namespace", required_argument, NULL, OPT_NAMESPACE},
    {"leader-elect", optional_argument, NULL, OPT_LEADER_ELECT},
    {"leader-election-namespace", required_argument, NULL, OPT_LEADER_NS},
    {"leader-election-id", required_argument, NULL, OPT_LEADER_ID},
    {"metrics-bind-address", required_argument, NULL, OPT_METRICS},
    {"health-probe-bind-address", required_argument, NULL, OPT_HEALTH},
    {"max-concurrent-reconciles", required_argument, NULL, OPT_MAX_CONCURRENT},
    {"cloud-endpoint", required_argument, NULL, OPT_CLOUD_ENDPOINT},
    {"cloud-credentials-secret", required_argument, NULL, OPT_CREDS},
    {"sync-period", required_argument, NULL, OPT_SYNC_PERIOD},
    {"rate-limiter-base-delay", required_argument, NULL, OPT_RL_BASE},
    {"rate-limiter-max-delay", required_argument, NULL, OPT_RL_MAX},
    {"cloud-timeout", required_argument, NULL, OPT_CLOUD_TIMEOUT},
    {"ready-file", required_argument, NULL, OPT_READY_FILE},
    {"zones", required_argument, NULL, OPT_ZONES},
    {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"help", no_argument, NULL, OPT_HELP},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

static int usage_error(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "cloudserver-operator: ");
    fprintf(stderr, fmt, a, b);
    fprintf(stderr, "\nRun 'cloudserver-operator --help' for the flags.\n");
    return 2;
}

static int duration_flag(const char *flag, const char *v, int64_t *out_ns)
{
    char why[CSL_UNITS_ERR_LEN];
    if (csl_duration_parse(v, out_ns, why) < 0 || *out_ns < 0) {
        usage_error("%s: %s", flag, why);
        return -1;
    }
    return 0;
}

/* "0" and ":0" disable a server (kubebuilder's convention); anything else
 * is an address for csl_httpd. */
static const char *addr_flag(const char *v)
{
    return strcmp(v, "0") == 0 || strcmp(v, ":0") == 0 ? NULL : v;
}

/* CSL_OPERATOR_BREAK: returns -1 on an unknown word. */
static int parse_break(op_options *o, const char *env)
{
    char *copy = strdup(env), *save = NULL;
    if (!copy) return -1;
    int rc = 0;
    for (char *w = strtok_r(copy, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
        while (*w == ' ') w++;
        if (strcmp(w, "no-finalizer") == 0)
            o->break_no_finalizer = true;
        else if (strcmp(w, "no-idempotency-key") == 0)
            o->break_no_idempotency_key = true;
        else if (strcmp(w, "no-failover") == 0)
            o->break_no_failover = true;
        else if (*w) {
            fprintf(stderr,
                    "cloudserver-operator: CSL_OPERATOR_BREAK: unknown mutation \"%s\" (known: "
                    "no-finalizer, no-idempotency-key, no-failover)\n",
                    w);
            rc = -1;
        }
    }
    free(copy);
    return rc;
}

/* ---------------------------------------------------------------- memory */

/* Why the operator's RSS needs a policy (measured with 10,000 CloudServers,
 * bench/README.md "Operator memory at 10,000 objects"): glibc gives each
 * new thread its own arena, up to 8 per core, and the operator has some 20
 * threads (workers, informers and their reflectors, the event recorder,
 * the cloud watch, the HTTP servers). Memory one thread frees stays in its
 * arena for that thread alone, and pages freed in the middle of an arena
 * stay resident until malloc_trim: the periodic cloud list (10,000
 * instances parsed every 10 s) alone left 8 MiB of free but resident
 * pages in its arena. Freed memory made up a quarter of the RSS.
 *
 * - Two arenas: the threads mostly wait on sockets, so they seldom contend
 *   for an arena lock (and small blocks come from each thread's tcache
 *   anyway), and freed memory serves whichever thread asks next.
 * - A fixed mmap threshold (128 KiB, glibc's initial value): otherwise
 *   glibc raises it to the size of each large block freed, up to 32 MiB,
 *   after which large transient buffers (list pages, a reconcile's state,
 *   response bodies) come from the arenas and fragment them.
 * - A thread that calls malloc_trim(0) when RSS has grown by 2 MiB since
 *   the last trim, checked every 5 s (a read of /proc/self/statm): it
 *   returns the free pages inside the arenas, which free() never does.
 *
 * MALLOC_ARENA_MAX, MALLOC_MMAP_THRESHOLD_ and GLIBC_TUNABLES in the
 * environment win over the first two, for whoever wants to measure
 * otherwise. */
#define TRIM_PERIOD_S 5
#define TRIM_GROWTH (2L * 1024 * 1024)

typedef struct trimmer {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop, started;
} trimmer;

/* Resident bytes, from /proc/self/statm; -1 when it cannot be read. */
static long resident_bytes(void)
{
    char buf[128];
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return -1;
    buf[n] = '\0';
    long size, pages;
    if (sscanf(buf, "%ld %ld", &size, &pages) != 2) return -1;
    return pages * sysconf(_SC_PAGESIZE);
}

static void *trimmer_main(void *arg)
{
    trimmer *t = arg;
    long level = resident_bytes();
    pthread_mutex_lock(&t->mu);
    while (!t->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += TRIM_PERIOD_S;
        while (!t->stop && pthread_cond_timedwait(&t->cv, &t->mu, &ts) != ETIMEDOUT) {
        }
        if (t->stop) break;
        pthread_mutex_unlock(&t->mu);
        long rss = resident_bytes();
        if (rss >= 0 && (level < 0 || rss > level + TRIM_GROWTH)) {
#ifdef __GLIBC__
            malloc_trim(0);
#endif
            level = resident_bytes();
        } else if (rss >= 0 && rss < level) {
            level = rss;
        }
        pthread_mutex_lock(&t->mu);
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

static bool env_tunes(const char *var, const char *tunable)
{
    const char *v = getenv(var), *t = getenv("GLIBC_TUNABLES");
    return (v && *v) || (t && strstr(t, tunable));
}

/* Sets malloc's policy (above) and starts the trimmer; before any thread
 * is created, and after the signals are blocked, which it inherits. */
static void memory_policy(trimmer *t)
{
#ifdef __GLIBC__
    if (!env_tunes("MALLOC_ARENA_MAX", "glibc.malloc.arena_max")) mallopt(M_ARENA_MAX, 2);
    if (!env_tunes("MALLOC_MMAP_THRESHOLD_", "glibc.malloc.mmap_threshold"))
        mallopt(M_MMAP_THRESHOLD, 128 * 1024);
#endif
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, &ca);
    pthread_condattr_destroy(&ca);
    t->started = pthread_create(&t->th, NULL, trimmer_main, t) == 0;
    if (!t->started)
        csl_log(CSL_LOG_WARN, "cannot start the memory trimmer thread; freed memory stays resident",
                NULL);
}

static void memory_policy_end(trimmer *t)
{
    if (t->started) {
        pthread_mutex_lock(&t->mu);
        t->stop = true;
        pthread_cond_signal(&t->cv);
        pthread_mutex_unlock(&t->mu);
        pthread_join(t->th, NULL);
    }
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cv);
}

/* ---------------------------------------------------------------- main */

int main(int argc, char **argv)
{
    op_options o = {
        .leader_id = "cloudserver-operator-leader",
        .metrics_addr = ":8080",
        .health_addr = ":8081",
        .max_concurrent = 4,
        .cloud_endpoint = "http://127.0.0.1:8090",
        .sync_period_ms = 10 * 60 * 1000,
        .rl_base_ns = 5000000,
        .rl_max_ns = 1000000000000LL,
        .cloud_timeout_ms = 30000,
    };
    const char *creds = "cloudserver-system/cloud-credentials";
    csl_log_level level = CSL_LOG_INFO;
    csl_log_format format = CSL_LOG_TEXT;
    static char creds_ns[OP_NS_LEN], creds_name[OP_NAME_LEN];
    int64_t ns;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
        switch (c) {
        case OPT_KUBECONFIG:
            o.kubeconfig = optarg;
            break;
        case OPT_CONTEXT:
            o.context = optarg;
            break;
        case OPT_NAMESPACE:
            o.namespace = *optarg ? optarg : NULL;
            break;
        case OPT_LEADER_ELECT:
            if (!optarg || strcmp(optarg, "true") == 0)
                o.leader_elect = true;
            else if (strcmp(optarg, "false") == 0)
                o.leader_elect = false;
            else
                return usage_error("--leader-elect: \"%s\" is not true or false%s", optarg, "");
            break;
        case OPT_LEADER_NS:
            o.leader_ns = optarg;
            break;
        case OPT_LEADER_ID:
            if (!*optarg) return usage_error("--leader-election-id must not be empty%s%s", "", "");
            o.leader_id = optarg;
            break;
        case OPT_METRICS:
            o.metrics_addr = addr_flag(optarg);
            break;
        case OPT_HEALTH:
            o.health_addr = addr_flag(optarg);
            break;
        case OPT_MAX_CONCURRENT: {
            char *end;
            long n = strtol(optarg, &end, 10);
            if (end == optarg || *end || n < 1 || n > 256)
                return usage_error("--max-concurrent-reconciles: \"%s\" is not 1..256%s", optarg,
                                   "");
            o.max_concurrent = (int)n;
            break;
        }
        case OPT_CLOUD_ENDPOINT:
            if (strncmp(optarg, "http://", 7) != 0 && strncmp(optarg, "https://", 8) != 0)
                return usage_error("--cloud-endpoint: \"%s\" is not an http:// or https:// URL%s",
                                   optarg, "");
            o.cloud_endpoint = optarg;
            break;
        case OPT_CREDS:
            creds = optarg;
            break;
        case OPT_SYNC_PERIOD:
            if (duration_flag("--sync-period", optarg, &ns) < 0) return 2;
            o.sync_period_ms = ns / 1000000;
            break;
        case OPT_RL_BASE:
            if (duration_flag("--rate-limiter-base-delay", optarg, &ns) < 0) return 2;
            o.rl_base_ns = ns;
            break;
        case OPT_RL_MAX:
            if (duration_flag("--rate-limiter-max-delay", optarg, &ns) < 0) return 2;
            o.rl_max_ns = ns;
            break;
        case OPT_CLOUD_TIMEOUT:
            if (duration_flag("--cloud-timeout", optarg, &ns) < 0) return 2;
            if (ns < 1000000)
                return usage_error("--cloud-timeout: must be at least 1ms%s%s", "", "");
            o.cloud_timeout_ms = ns / 1000000;
            break;
        case OPT_ZONES: {
            char why[160];
            if (op_zones_parse(optarg, &o, why, sizeof why) < 0)
                return usage_error("--zones: %s%s", why, "");
            break;
        }
        case OPT_READY_FILE:
            o.ready_file = optarg;
            break;
        case OPT_LOG_FORMAT:
            if (!csl_log_format_parse(optarg, &format))
                return usage_error("--log-format: \"%s\" is not text or json%s", optarg, "");
            break;
        case OPT_LOG_LEVEL:
            if (!csl_log_level_parse(optarg, &level))
                return usage_error("--log-level: \"%s\" is not debug, info, warn or error%s",
                                   optarg, "");
            break;
        case OPT_HELP:
            fputs(usage_text, stdout);
            return 0;
        case OPT_VERSION:
            printf("cloudserver-operator %s\n", OP_VERSION);
            return 0;
        default:
            if (optopt >= OPT_KUBECONFIG)
                return usage_error("%s needs a value%s", argv[optind - 1], "");
            return usage_error("unknown flag \"%s\"%s", argv[optind - 1], "");
        }
    }
    if (optind < argc) return usage_error("unexpected argument \"%s\"%s", argv[optind], "");
    if (o.rl_max_ns < o.rl_base_ns)
        return usage_error(
            "--rate-limiter-max-delay must not be below --rate-limiter-base-delay%s%s", "", "");
    const char *slash = strchr(creds, '/');
    if (!slash || slash == creds || !slash[1] || strchr(slash + 1, '/') ||
        (size_t)(slash - creds) >= sizeof creds_ns || strlen(slash + 1) >= sizeof creds_name)
        return usage_error("--cloud-credentials-secret: \"%s\" is not NAMESPACE/NAME%s", creds, "");
    memcpy(creds_ns, creds, (size_t)(slash - creds));
    snprintf(creds_name, sizeof creds_name, "%s", slash + 1);
    o.creds_ns = creds_ns;
    o.creds_name = creds_name;
    const char *brk = getenv("CSL_OPERATOR_BREAK");
    if (brk && *brk && parse_break(&o, brk) < 0) return 2;

    csl_log_setup("cloudserver-operator", level, format, 2);
    if (o.break_no_finalizer || o.break_no_idempotency_key || o.break_no_failover)
        csl_log(CSL_LOG_WARN,
                "CSL_OPERATOR_BREAK is set: this operator is BROKEN ON PURPOSE (test-only mutation "
                "run); never use it for real",
                "mutations", brk, NULL);

    /* Blocked before any thread starts, so every thread inherits it and
     * only the main thread's sigtimedwait takes them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    trimmer trim = {0};
    memory_policy(&trim);

    csl_log(CSL_LOG_INFO, "starting", "version", OP_VERSION, "cloud", o.cloud_endpoint, "namespace",
            o.namespace ? o.namespace : "(all)", NULL);
    int code = op_manager_run(&o);
    memory_policy_end(&trim);
    return code;
}
