/* test_workqueue.c — the work queue: dedup, FIFO order, one worker per key
 * under contention, re-queue of keys changed while processed, delayed adds,
 * the rate limiter's maths (pure) and its real waits, back-off under
 * libfaketime's accelerated clock, shutdown and drain, metrics.
 *
 * The libfaketime test re-executes this program under `faketime`; the
 * child is told apart by the environment variable CHILD_ENV and runs
 * faketime_child() from a constructor instead of the CUnit suites. */
#include "../testutil.h"

#include "csl/buf.h"
#include "csl/clock.h"
#include "csl/log.h"
#include "csl/metrics.h"
#include "csl/workqueue.h"

#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MS 1000000LL
#define SEC 1000000000LL
#define CHILD_ENV "CSL_TEST_WORKQUEUE_FAKETIME_CHILD"

extern char **environ;

static FILE *log_file;

static bool logged(const char *text)
{
    static char buf[65536];
    fflush(log_file);
    ssize_t n = pread(fileno(log_file), buf, sizeof buf - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    return strstr(buf, text) != NULL;
}

static csl_workqueue *new_queue(const char *name, const csl_ratelimit *limit, csl_metrics *reg)
{
    char err[256] = "";
    csl_workqueue_options opt = {name, reg, limit};
    csl_workqueue *q = csl_workqueue_new(&opt, err, sizeof err);
    if (!q) fprintf(stderr, "csl_workqueue_new: %s\n", err);
    return q;
}

/* Waits (up to 10 s) until a key is queued, then gets it, so that a key
 * that never comes fails the test instead of blocking it. Only for tests
 * where the caller is the one consumer. */
static const char *get_soon(csl_workqueue *q)
{
    int64_t deadline = csl_mono_ns() + 10 * SEC;
    while (csl_workqueue_len(q) == 0) {
        if (csl_mono_ns() > deadline) return NULL;
        csl_sleep_ns(MS / 2);
    }
    return csl_workqueue_get(q);
}

/* Gets a key, checks it is want, and ends its processing. */
static bool get_is(csl_workqueue *q, const char *want)
{
    const char *k = get_soon(q);
    bool ok = k && strcmp(k, want) == 0;
    if (!ok) fprintf(stderr, "get: want %s, got %s\n", want, k ? k : "NULL");
    if (k) csl_workqueue_done(q, k);
    return ok;
}

/* ------------------------------------------------------------- pure maths */

static void test_backoff_maths(void)
{
    int64_t base = 5 * MS, cap = 1000 * SEC;
    int64_t want = base;
    for (unsigned f = 0; f < 17; f++, want *= 2)
        CU_ASSERT_EQUAL(csl_ratelimit_backoff_ns(base, cap, f), want);
    /* 5ms × 2^17 = 655.36 s; 2^18 passes 1000 s */
    CU_ASSERT_EQUAL(csl_ratelimit_backoff_ns(base, cap, 17), 655360 * MS);
    CU_ASSERT_EQUAL(csl_ratelimit_backoff_ns(base, cap, 18), cap);
    /* overflow of the shift never wraps below the cap */
    for (unsigned f = 30; f < 200; f++)
        CU_ASSERT_EQUAL(csl_ratelimit_backoff_ns(base, cap, f), cap);
    CU_ASSERT_EQUAL(csl_ratelimit_backoff_ns(base, cap, UINT32_MAX), cap);
    CU_ASSERT_EQUAL(csl_ratelimit_backoff_ns(base, INT64_MAX, 62), INT64_MAX);
    CU_ASSERT_EQUAL(csl_ratelimit_backoff_ns(1, INT64_MAX, 62), (int64_t)1 << 62);
    CU_ASSERT_EQUAL(csl_ratelimit_backoff_ns(0, cap, 5), 0);
    CU_ASSERT_EQUAL(csl_ratelimit_backoff_ns(10 * MS, 10 * MS, 0), 10 * MS);
    CU_ASSERT_EQUAL(csl_ratelimit_backoff_ns(10 * MS, 10 * MS, 3), 10 * MS);
}

static void test_token_bucket(void)
{
    csl_token_bucket b;
    int64_t t0 = 1000 * SEC;
    csl_token_bucket_init(&b, 10, 100, t0);
    for (int i = 0; i < 100; i++) CU_ASSERT_EQUAL(csl_token_bucket_reserve(&b, t0), 0);
    /* burst spent: each further token is 1/qps later than the previous */
    CU_ASSERT_EQUAL(csl_token_bucket_reserve(&b, t0), 100 * MS);
    CU_ASSERT_EQUAL(csl_token_bucket_reserve(&b, t0), 200 * MS);
    CU_ASSERT_EQUAL(csl_token_bucket_reserve(&b, t0), 300 * MS);
    /* 50 ms later the next token is due at 400 ms: wait 350 ms */
    CU_ASSERT_EQUAL(csl_token_bucket_reserve(&b, t0 + 50 * MS), 350 * MS);
    /* 1 s later: 10 tokens over a debt of 3.5 leave 6.5 */
    for (int i = 0; i < 6; i++) CU_ASSERT_EQUAL(csl_token_bucket_reserve(&b, t0 + 1050 * MS), 0);
    CU_ASSERT_EQUAL(csl_token_bucket_reserve(&b, t0 + 1050 * MS), 50 * MS);
    /* a clock that goes back gains nothing */
    CU_ASSERT_EQUAL(csl_token_bucket_reserve(&b, t0), 150 * MS);
    /* a long pause refills to the burst, never beyond */
    int64_t later = t0 + 3600 * SEC;
    for (int i = 0; i < 100; i++) CU_ASSERT_EQUAL(csl_token_bucket_reserve(&b, later), 0);
    CU_ASSERT_EQUAL(csl_token_bucket_reserve(&b, later), 100 * MS);

    /* burst 1, 4 qps: evenly spaced by 250 ms */
    csl_token_bucket_init(&b, 4, 1, t0);
    for (int i = 0; i < 5; i++) CU_ASSERT_EQUAL(csl_token_bucket_reserve(&b, t0), i * 250 * MS);
    /* 3 qps: 333.33… ms rounded up */
    csl_token_bucket_init(&b, 3, 1, t0);
    CU_ASSERT_EQUAL(csl_token_bucket_reserve(&b, t0), 0);
    CU_ASSERT_EQUAL(csl_token_bucket_reserve(&b, t0), 333333334);
    /* qps 0: no bucket */
    csl_token_bucket_init(&b, 0, 0, t0);
    for (int i = 0; i < 1000; i++) CU_ASSERT_EQUAL(csl_token_bucket_reserve(&b, t0), 0);
}

static void test_ratelimiter_when(void)
{
    char err[256];
    /* per-key only */
    csl_ratelimit rl = {5 * MS, 40 * MS, 0, 0};
    csl_ratelimiter *l = csl_ratelimiter_new(&rl, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    int64_t now = csl_mono_ns();
    const int64_t want[] = {5 * MS, 10 * MS, 20 * MS, 40 * MS, 40 * MS, 40 * MS};
    for (int i = 0; i < 6; i++) {
        CU_ASSERT_EQUAL(csl_ratelimiter_requeues(l, "ns/a"), (unsigned)i);
        CU_ASSERT_EQUAL(csl_ratelimiter_when(l, "ns/a", now), want[i]);
    }
    CU_ASSERT_EQUAL(csl_ratelimiter_requeues(l, "ns/a"), 6);
    /* keys are independent */
    CU_ASSERT_EQUAL(csl_ratelimiter_requeues(l, "ns/b"), 0);
    CU_ASSERT_EQUAL(csl_ratelimiter_when(l, "ns/b", now), 5 * MS);
    CU_ASSERT_EQUAL(csl_ratelimiter_when(l, "ns/b", now), 10 * MS);
    /* forget resets one key */
    csl_ratelimiter_forget(l, "ns/a");
    CU_ASSERT_EQUAL(csl_ratelimiter_requeues(l, "ns/a"), 0);
    CU_ASSERT_EQUAL(csl_ratelimiter_when(l, "ns/a", now), 5 * MS);
    CU_ASSERT_EQUAL(csl_ratelimiter_requeues(l, "ns/b"), 2);
    csl_ratelimiter_forget(l, "ns/never-seen");
    csl_ratelimiter_free(l);

    /* the max of both: the bucket (10 qps, burst 2) wins once spent */
    rl = (csl_ratelimit){1 * MS, 1 * SEC, 10, 2};
    l = csl_ratelimiter_new(&rl, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    now = csl_mono_ns();
    CU_ASSERT_EQUAL(csl_ratelimiter_when(l, "k1", now), 1 * MS);
    CU_ASSERT_EQUAL(csl_ratelimiter_when(l, "k2", now), 1 * MS);
    CU_ASSERT_EQUAL(csl_ratelimiter_when(l, "k3", now), 100 * MS);
    CU_ASSERT_EQUAL(csl_ratelimiter_when(l, "k4", now), 200 * MS);
    /* forget does not refund the bucket */
    csl_ratelimiter_forget(l, "k1");
    CU_ASSERT_EQUAL(csl_ratelimiter_when(l, "k1", now), 300 * MS);
    /* the per-key term still grows underneath and wins when larger */
    for (int i = 0; i < 9; i++) csl_ratelimiter_when(l, "k9", now + 3600 * SEC);
    /* 9 failures: 1ms × 2^9 = 512 ms vs a refilled bucket */
    CU_ASSERT_EQUAL(csl_ratelimiter_when(l, "k9", now + 7200 * SEC), 512 * MS);
    csl_ratelimiter_free(l);

    /* NULL: client-go's defaults */
    l = csl_ratelimiter_new(NULL, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    now = csl_mono_ns();
    CU_ASSERT_EQUAL(csl_ratelimiter_when(l, "x", now), 5 * MS);
    for (int i = 1; i < 100; i++) csl_ratelimiter_when(l, "x", now);
    CU_ASSERT_EQUAL(csl_ratelimiter_when(l, "x", now), 1000 * SEC);
    CU_ASSERT_EQUAL(csl_ratelimiter_requeues(l, "x"), 101);
    /* 101 reservations spent the burst of 100: the next other key waits */
    CU_ASSERT_EQUAL(csl_ratelimiter_when(l, "y", now), 200 * MS);
    csl_ratelimiter_free(l);
}

static void test_ratelimit_check(void)
{
    char err[256];
    csl_ratelimit ok = CSL_RATELIMIT_DEFAULT;
    CU_ASSERT_EQUAL(csl_ratelimit_check(&ok, err, sizeof err), 0);
    CU_ASSERT_EQUAL(ok.base_ns, 5 * MS);
    CU_ASSERT_EQUAL(ok.max_ns, 1000 * SEC);
    CU_ASSERT_EQUAL(ok.qps, 10);
    CU_ASSERT_EQUAL(ok.burst, 100);
    csl_ratelimit nobucket = {0, 0, 0, 0};
    CU_ASSERT_EQUAL(csl_ratelimit_check(&nobucket, err, sizeof err), 0);

    struct {
        csl_ratelimit rl;
        const char *says;
    } bad[] = {
        {{-1, 10 * MS, 10, 100}, "base delay -1ns is negative"},
        {{20 * MS, 10 * MS, 10, 100}, "maximum delay 10ms is below the base delay 20ms"},
        {{5 * MS, 1 * SEC, -1, 100}, "qps -1 is not a finite number"},
        {{5 * MS, 1 * SEC, NAN, 100}, "qps nan is not a finite number"},
        {{5 * MS, 1 * SEC, INFINITY, 100}, "qps inf is not a finite number"},
        {{5 * MS, 1 * SEC, 10, 0}, "burst 0 with qps 10 would never let a retry through"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        CU_ASSERT_EQUAL(csl_ratelimit_check(&bad[i].rl, err, sizeof err), -1);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, bad[i].says));
        if (!strstr(err, bad[i].says)) fprintf(stderr, "got: %s\n", err);
        CU_ASSERT_PTR_NULL(csl_ratelimiter_new(&bad[i].rl, err, sizeof err));
        csl_workqueue_options opt = {"ctl", NULL, &bad[i].rl};
        CU_ASSERT_PTR_NULL(csl_workqueue_new(&opt, err, sizeof err));
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "workqueue ctl: rate limit:"));
    }
    csl_workqueue_options noname = {NULL, NULL, NULL};
    CU_ASSERT_PTR_NULL(csl_workqueue_new(&noname, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "a name is required"));
    noname.name = "";
    CU_ASSERT_PTR_NULL(csl_workqueue_new(&noname, err, sizeof err));
    CU_ASSERT_PTR_NULL(csl_workqueue_new(NULL, err, sizeof err));
}

/* --------------------------------------------------------- queue basics */

static void test_fifo_and_dedup(void)
{
    csl_workqueue *q = new_queue("fifo", NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    const char *adds[] = {"ns/a", "ns/b", "ns/a", "ns/c", "ns/b", "ns/a", "ns/d"};
    for (size_t i = 0; i < 7; i++) csl_workqueue_add(q, adds[i]);
    CU_ASSERT_EQUAL(csl_workqueue_len(q), 4);
    CU_ASSERT(get_is(q, "ns/a"));
    CU_ASSERT(get_is(q, "ns/b"));
    CU_ASSERT(get_is(q, "ns/c"));
    CU_ASSERT(get_is(q, "ns/d"));
    CU_ASSERT_EQUAL(csl_workqueue_len(q), 0);
    CU_ASSERT_EQUAL(csl_workqueue_in_flight(q), 0);

    /* many keys: the table grows, order holds */
    char key[32];
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < 10000; i++) {
            snprintf(key, sizeof key, "ns/k%05d", i);
            csl_workqueue_add(q, key);
        }
    CU_ASSERT_EQUAL(csl_workqueue_len(q), 10000);
    bool in_order = true;
    for (int i = 0; i < 10000; i++) {
        snprintf(key, sizeof key, "ns/k%05d", i);
        const char *k = get_soon(q);
        if (!k || strcmp(k, key) != 0) in_order = false;
        if (k) csl_workqueue_done(q, k);
    }
    CU_ASSERT(in_order);
    CU_ASSERT_EQUAL(csl_workqueue_len(q), 0);
    csl_workqueue_free(q);
}

static void test_readd_while_processing(void)
{
    csl_workqueue *q = new_queue("readd", NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    csl_workqueue_add(q, "ns/a");
    csl_workqueue_add(q, "ns/b");
    const char *a = get_soon(q);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_STRING_EQUAL(a, "ns/a");
    /* changed while processed: not handed out to anyone else… */
    csl_workqueue_add(q, "ns/a");
    csl_workqueue_add(q, "ns/a");
    CU_ASSERT_EQUAL(csl_workqueue_len(q), 1); /* only ns/b */
    CU_ASSERT_EQUAL(csl_workqueue_in_flight(q), 1);
    CU_ASSERT(get_is(q, "ns/b"));
    CU_ASSERT_EQUAL(csl_workqueue_len(q), 0);
    /* …but queued again by done, once */
    csl_workqueue_done(q, a);
    CU_ASSERT_EQUAL(csl_workqueue_len(q), 1);
    CU_ASSERT_EQUAL(csl_workqueue_in_flight(q), 0);
    CU_ASSERT(get_is(q, "ns/a"));
    CU_ASSERT_EQUAL(csl_workqueue_len(q), 0);
    CU_ASSERT_EQUAL(csl_workqueue_in_flight(q), 0);

    /* done with an equal string (not the queue's pointer) works too */
    csl_workqueue_add(q, "ns/c");
    const char *c = get_soon(q);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    char copy[16];
    snprintf(copy, sizeof copy, "%s", c);
    csl_workqueue_add(q, "ns/c");
    csl_workqueue_done(q, copy);
    CU_ASSERT(get_is(q, "ns/c"));

    /* misuse is logged, not fatal */
    csl_workqueue_done(q, "ns/c");
    CU_ASSERT(logged("done(\"ns/c\") for a key that is not being processed ignored"));
    csl_workqueue_done(q, "ns/unknown");
    csl_workqueue_add(q, NULL);
    CU_ASSERT(logged("workqueue readd: add with a NULL key ignored"));
    csl_workqueue_add(q, "");
    CU_ASSERT(logged("workqueue readd: add with an empty key ignored"));
    csl_workqueue_add_after(q, NULL, MS);
    CU_ASSERT_EQUAL(csl_workqueue_len(q), 0);
    CU_ASSERT_EQUAL(csl_workqueue_in_flight(q), 0);
    csl_workqueue_free(q);
}

/* ----------------------------------------------------- concurrency */

#define NKEYS 3
#define NWORKERS 4
#define NADDS 20000

static csl_workqueue *hq;
static atomic_int inflight[NKEYS];
static atomic_uint version[NKEYS];
static atomic_uint seen[NKEYS];
static atomic_int violations;
static atomic_long processed;

static void *hammer_worker(void *arg)
{
    const char *k;
    unsigned spin = (unsigned)(uintptr_t)arg;
    while ((k = csl_workqueue_get(hq))) {
        int i = k[strlen(k) - 1] - '0';
        if (atomic_fetch_add(&inflight[i], 1) != 0) atomic_fetch_add(&violations, 1);
        unsigned v = atomic_load(&version[i]);
        if (v > atomic_load(&seen[i])) atomic_store(&seen[i], v);
        /* a little work, different per worker, so overlaps happen */
        for (volatile unsigned j = 0; j < spin * 200; j++) {
        }
        if (spin & 1) sched_yield();
        if (atomic_fetch_sub(&inflight[i], 1) != 1) atomic_fetch_add(&violations, 1);
        atomic_fetch_add(&processed, 1);
        csl_workqueue_done(hq, k);
    }
    return NULL;
}

static void test_no_concurrent_same_key(void)
{
    hq = new_queue("hammer", NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(hq);
    pthread_t th[NWORKERS];
    for (int i = 0; i < NWORKERS; i++)
        pthread_create(&th[i], NULL, hammer_worker, (void *)(uintptr_t)(i + 1));
    char key[16];
    unsigned r = 12345;
    for (int n = 0; n < NADDS; n++) {
        r = r * 1103515245 + 12345;
        int i = (int)((r >> 16) % NKEYS);
        snprintf(key, sizeof key, "ns/key%d", i);
        /* the change happens before the add, as an informer's would */
        atomic_fetch_add(&version[i], 1);
        csl_workqueue_add(hq, key);
        if (n % 64 == 0) sched_yield();
    }
    /* every key must be processed after its last change: no lost update */
    int64_t deadline = csl_mono_ns() + 60 * SEC;
    bool caught_up = false;
    while (!caught_up && csl_mono_ns() < deadline) {
        caught_up = true;
        for (int i = 0; i < NKEYS; i++)
            if (atomic_load(&seen[i]) != atomic_load(&version[i])) caught_up = false;
        if (!caught_up) csl_sleep_ns(MS);
    }
    CU_ASSERT(caught_up);
    /* not drain: the workers end their keys anyway, and a broken count
     * must fail the assertions below rather than hang here */
    csl_workqueue_shutdown(hq);
    for (int i = 0; i < NWORKERS; i++) pthread_join(th[i], NULL);
    CU_ASSERT_EQUAL(atomic_load(&violations), 0);
    CU_ASSERT_EQUAL(csl_workqueue_in_flight(hq), 0);
    long p = atomic_load(&processed);
    /* dedup merged adds: fewer runs than adds, at least one per key */
    CU_ASSERT(p >= NKEYS && p <= NADDS);
    fprintf(stderr, "\n    %d adds → %ld runs over %d keys, %d workers ", NADDS, p, NKEYS,
            NWORKERS);
    csl_workqueue_free(hq);
}

/* ------------------------------------------------------- delayed adds */

static void test_add_after_order_and_dedup(void)
{
    csl_workqueue *q = new_queue("after", NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);

    /* zero or negative delay: at once */
    csl_workqueue_add_after(q, "ns/now", 0);
    csl_workqueue_add_after(q, "ns/past", -5 * SEC);
    CU_ASSERT_EQUAL(csl_workqueue_len(q), 2);
    CU_ASSERT(get_is(q, "ns/now"));
    CU_ASSERT(get_is(q, "ns/past"));

    /* deadlines fire in their order, not the order of the calls */
    int perm[32];
    for (int i = 0; i < 32; i++) perm[i] = i;
    unsigned r = 7;
    for (int i = 31; i > 0; i--) {
        r = r * 1103515245 + 12345;
        int j = (int)((r >> 16) % (unsigned)(i + 1));
        int t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    char key[16];
    int64_t t0 = csl_mono_ns();
    for (int i = 0; i < 32; i++) {
        snprintf(key, sizeof key, "ns/d%02d", perm[i]);
        csl_workqueue_add_after(q, key, 20 * MS + perm[i] * 10 * MS);
    }
    CU_ASSERT_EQUAL(csl_workqueue_len(q), 0);
    bool ordered = true;
    for (int i = 0; i < 32; i++) {
        snprintf(key, sizeof key, "ns/d%02d", i);
        if (!get_is(q, key)) ordered = false;
    }
    CU_ASSERT(ordered);
    /* none came early: the last was due 330 ms after t0 */
    CU_ASSERT(csl_mono_ns() - t0 >= 330 * MS);

    /* a second deadline for a waiting key keeps the earlier one… */
    csl_workqueue_add_after(q, "ns/x", 400 * MS);
    csl_workqueue_add_after(q, "ns/x", 20 * MS); /* earlier: replaces */
    csl_workqueue_add_after(q, "ns/y", 100 * MS);
    csl_workqueue_add_after(q, "ns/y", 800 * MS); /* later: ignored */
    csl_workqueue_add_after(q, "ns/v", 600 * MS);
    CU_ASSERT(get_is(q, "ns/x"));
    CU_ASSERT(get_is(q, "ns/y"));
    /* …and drops the later: x does not come back at 400 ms, before v */
    CU_ASSERT(get_is(q, "ns/v"));
    CU_ASSERT_EQUAL(csl_workqueue_len(q), 0);

    /* a deadline that fires while the key is processed marks it dirty */
    csl_workqueue_add(q, "ns/p");
    const char *p = get_soon(q);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    csl_workqueue_add_after(q, "ns/p", 10 * MS);
    csl_sleep_ns(60 * MS);
    CU_ASSERT_EQUAL(csl_workqueue_len(q), 0);
    csl_workqueue_done(q, p);
    CU_ASSERT_EQUAL(csl_workqueue_len(q), 1);
    CU_ASSERT(get_is(q, "ns/p"));

    /* free with deadlines still pending releases them */
    csl_workqueue_add_after(q, "ns/late", 3600 * SEC);
    csl_workqueue_add_after(q, "ns/huge", INT64_MAX);
    csl_workqueue_free(q);
}

static int64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * SEC + ts.tv_nsec;
}

/* The timer thread sleeps until the earliest deadline: an idle queue costs
 * no CPU (a timed wait on the wrong clock, or one the kernel refuses, would
 * return at once and spin). A correct queue uses ~0 CPU here; the bound is
 * loose so that only a spin breaks it. */
static void idle_for(csl_workqueue *q, const char *what)
{
    int64_t c0 = cpu_ns();
    csl_sleep_ns(200 * MS);
    int64_t used = cpu_ns() - c0;
    CU_ASSERT(used < 70 * MS);
    if (used >= 70 * MS) fprintf(stderr, "\n    %s: %.3f s CPU in 0.2 s ", what, used / 1e9);
}

static void test_idle_timer_sleeps(void)
{
    csl_workqueue *q = new_queue("idle", NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    idle_for(q, "no deadline");
    csl_workqueue_add_after(q, "ns/forever", INT64_MAX);
    idle_for(q, "deadline at the end of time");
    csl_workqueue_add_after(q, "ns/far", 3600 * SEC);
    idle_for(q, "deadline in an hour");
    CU_ASSERT_EQUAL(csl_workqueue_len(q), 0);
    csl_workqueue_free(q);
}

static void test_rate_limited_real_waits(void)
{
    /* per-key back-off: 50 ms, then 100 ms */
    csl_ratelimit rl = {50 * MS, 1 * SEC, 0, 0};
    csl_workqueue *q = new_queue("backoff", &rl, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    for (int i = 0; i < 2; i++) {
        int64_t want = (50 * MS) << i;
        int64_t t0 = csl_mono_ns();
        csl_workqueue_add_rate_limited(q, "ns/fail");
        CU_ASSERT_EQUAL(csl_workqueue_len(q), 0);
        CU_ASSERT(get_is(q, "ns/fail"));
        int64_t took = csl_mono_ns() - t0;
        CU_ASSERT(took >= want);
        CU_ASSERT(took < want + 3 * SEC);
    }
    CU_ASSERT_EQUAL(csl_workqueue_num_requeues(q, "ns/fail"), 2);
    csl_workqueue_forget(q, "ns/fail");
    CU_ASSERT_EQUAL(csl_workqueue_num_requeues(q, "ns/fail"), 0);
    csl_workqueue_free(q);

    /* the overall bucket, 10 qps and burst 1: three keys 100 ms apart */
    rl = (csl_ratelimit){0, 0, 10, 1};
    q = new_queue("bucket", &rl, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    int64_t t0 = csl_mono_ns();
    csl_workqueue_add_rate_limited(q, "ns/a");
    csl_workqueue_add_rate_limited(q, "ns/b");
    csl_workqueue_add_rate_limited(q, "ns/c");
    const char *want[] = {"ns/a", "ns/b", "ns/c"};
    for (int i = 0; i < 3; i++) {
        CU_ASSERT(get_is(q, want[i]));
        int64_t took = csl_mono_ns() - t0;
        CU_ASSERT(took >= i * 100 * MS);
        CU_ASSERT(took < i * 100 * MS + 3 * SEC);
    }
    csl_workqueue_free(q);
}

/* ------------------------------------------------------------ faketime */

/* The child: with the clock sped up ten times, drives one key's back-off
 * up to the 10 s cap and prints, per observed wait, the computed delay and
 * what passed on the faked and on the real monotonic clock. */
static int64_t real_mono_ns(void)
{
    struct timespec ts; /* the raw syscall: libfaketime does not see it */
    syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * SEC + ts.tv_nsec;
}

/* One failure more, then the wait for the key's retry. */
static void child_wait(csl_workqueue *q, unsigned failures)
{
    int64_t want = csl_ratelimit_backoff_ns(5 * MS, 10 * SEC, failures);
    int64_t f0 = csl_mono_ns(), r0 = real_mono_ns();
    csl_workqueue_add_rate_limited(q, "ns/slow");
    const char *k = csl_workqueue_get(q);
    int64_t f1 = csl_mono_ns(), r1 = real_mono_ns();
    if (k) csl_workqueue_done(q, k);
    printf("wait %u %lld %lld %lld\n", failures, (long long)want, (long long)(f1 - f0),
           (long long)(r1 - r0));
}

/* The whole back-off of one key: 5 ms, 10 ms … 5.12 s, then 10 s (5 ms ×
 * 2^11 = 10.24 s is over the cap): 20.235 faked seconds. */
static int faketime_child(void)
{
    csl_ratelimit rl = {5 * MS, 10 * SEC, 0, 0};
    csl_workqueue *q = new_queue("faketime", &rl, NULL);
    if (!q) return 2;
    for (unsigned f = 0; f < 12; f++) child_wait(q, f);
    printf("requeues %u\n", csl_workqueue_num_requeues(q, "ns/slow"));
    fflush(stdout);
    csl_workqueue_free(q);
    return 0;
}

__attribute__((constructor)) static void maybe_child(void)
{
    if (getenv(CHILD_ENV)) exit(faketime_child());
}

static void test_faketime_backoff(void)
{
    /* the child's environment: ours, the marker, and (for sanitizer builds)
     * permission for libfaketime to come before the ASan runtime */
    size_t n = 0;
    while (environ[n]) n++;
    char **envp = calloc(n + 3, sizeof *envp);
    CU_ASSERT_PTR_NOT_NULL_FATAL(envp);
    size_t m = 0;
    const char *asan = getenv("ASAN_OPTIONS");
    char asan_opt[512];
    snprintf(asan_opt, sizeof asan_opt, "ASAN_OPTIONS=%s%sverify_asan_link_order=0",
             asan ? asan : "", asan && *asan ? ":" : "");
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "ASAN_OPTIONS=", 13) != 0) envp[m++] = environ[i];
    envp[m++] = asan_opt;
    envp[m++] = CHILD_ENV "=1";

    char self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    CU_ASSERT_FATAL(len > 0);
    self[len] = '\0';
    int fds[2];
    CU_ASSERT_FATAL(pipe(fds) == 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    posix_spawn_file_actions_addclose(&fa, fds[1]);
    char *argv[] = {"faketime", "-f", "+0 x10", self, NULL};
    pid_t pid;
    int64_t r0 = csl_mono_ns();
    int rc = posix_spawnp(&pid, "faketime", &fa, NULL, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    free(envp);
    close(fds[1]);
    if (rc != 0) {
        close(fds[0]);
        CU_FAIL("cannot run faketime: install the Debian package faketime (libfaketime)");
        return;
    }

    /* read with a deadline: a child that hangs is killed, not waited on */
    char out[4096];
    size_t got = 0;
    int64_t deadline = csl_mono_ns() + 60 * SEC;
    for (;;) {
        struct timeval tv = {0, 100000};
        fd_set rd;
        FD_ZERO(&rd);
        FD_SET(fds[0], &rd);
        if (csl_mono_ns() > deadline) {
            kill(pid, SIGKILL);
            CU_FAIL("faketime child still running after 60 s: killed");
            break;
        }
        if (select(fds[0] + 1, &rd, NULL, NULL, &tv) <= 0) continue;
        ssize_t k = read(fds[0], out + got, sizeof out - 1 - got);
        if (k <= 0) break;
        got += (size_t)k;
    }
    out[got] = '\0';
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    int64_t real_total = csl_mono_ns() - r0;
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    int waits = 0;
    int64_t fake_sum = 0;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        unsigned f, rq;
        long long want, fake, real;
        if (sscanf(line, "wait %u %lld %lld %lld", &f, &want, &fake, &real) == 4) {
            waits++;
            fake_sum += fake;
            bool ok = fake >= want && fake <= want + want / 2 + 2 * SEC &&
                      (want < SEC || (fake > 8 * real && fake < 12 * real));
            if (!ok)
                fprintf(stderr, "\n    failures %2u: computed %.3f s, faked %.3f s, real %.3f s", f,
                        want / 1e9, fake / 1e9, real / 1e9);
            /* never early on the (faked) clock the queue runs on */
            CU_ASSERT(fake >= want);
            /* generous: 2 faked seconds are 200 ms of real scheduling */
            CU_ASSERT(fake <= want + want / 2 + 2 * SEC);
            /* the clock really ran ten times faster */
            if (want >= SEC) CU_ASSERT(fake > 8 * real && fake < 12 * real);
            /* the sequence the child saw: 5 ms doubling, capped at 10 s */
            CU_ASSERT_EQUAL(f, (unsigned)waits - 1);
            CU_ASSERT_EQUAL(want, f < 11 ? (5 * MS) << f : 10 * SEC);
        } else if (sscanf(line, "requeues %u", &rq) == 1) {
            CU_ASSERT_EQUAL(rq, 12);
        }
    }
    CU_ASSERT_EQUAL(waits, 12);
    /* 20.235 faked seconds took about 2 real ones */
    CU_ASSERT(fake_sum >= 20235 * MS);
    CU_ASSERT(real_total < fake_sum / 3);
    fprintf(stderr, "\n    total: faked %.2f s in %.2f s real ", fake_sum / 1e9, real_total / 1e9);
}

/* ------------------------------------------------------------ shutdown */

static csl_workqueue *sq;
static atomic_int got_null;
static atomic_int drain_done;
static atomic_int work_done;

static void *getter(void *arg)
{
    if (!csl_workqueue_get(sq)) atomic_fetch_add(&got_null, 1);
    return NULL;
}

static void test_shutdown_wakes_getters(void)
{
    sq = new_queue("shut", NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sq);
    atomic_store(&got_null, 0);
    pthread_t th[3];
    for (int i = 0; i < 3; i++) pthread_create(&th[i], NULL, getter, NULL);
    csl_sleep_ns(50 * MS);
    CU_ASSERT_EQUAL(atomic_load(&got_null), 0); /* blocked, not returned */
    csl_workqueue_shutdown(sq);
    for (int i = 0; i < 3; i++) pthread_join(th[i], NULL);
    CU_ASSERT_EQUAL(atomic_load(&got_null), 3);
    CU_ASSERT(csl_workqueue_shutting_down(sq));
    /* no key after shutdown, queued or new */
    csl_workqueue_add(sq, "ns/late");
    csl_workqueue_add_after(sq, "ns/later", MS);
    CU_ASSERT_EQUAL(csl_workqueue_len(sq), 0);
    CU_ASSERT_PTR_NULL(csl_workqueue_get(sq));
    csl_workqueue_shutdown(sq); /* idempotent */
    csl_workqueue_free(sq);

    /* queued keys are not handed out once shutting down */
    sq = new_queue("shut2", NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sq);
    csl_workqueue_add(sq, "ns/a");
    csl_workqueue_add_after(sq, "ns/b", 3600 * SEC);
    csl_workqueue_shutdown(sq);
    CU_ASSERT_PTR_NULL(csl_workqueue_get(sq));
    csl_workqueue_free(sq);
    csl_workqueue_free(NULL);
}

static void *drainer(void *arg)
{
    csl_workqueue_shutdown_drain(sq);
    /* work_done was set before done: a drain that waited sees it */
    atomic_store(&drain_done, atomic_load(&work_done) ? 1 : -1);
    return NULL;
}

static void test_shutdown_drain(void)
{
    sq = new_queue("drain", NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sq);
    atomic_store(&drain_done, 0);
    atomic_store(&work_done, 0);
    csl_workqueue_add(sq, "ns/a");
    csl_workqueue_add(sq, "ns/b");
    const char *a = get_soon(sq);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    csl_workqueue_add(sq, "ns/a"); /* dirty while in flight */
    pthread_t th;
    pthread_create(&th, NULL, drainer, NULL);
    csl_sleep_ns(100 * MS);
    CU_ASSERT_EQUAL(atomic_load(&drain_done), 0); /* still waiting for ns/a */
    CU_ASSERT(csl_workqueue_shutting_down(sq));
    CU_ASSERT_PTR_NULL(csl_workqueue_get(sq)); /* ns/b is not handed out */
    atomic_store(&work_done, 1);
    csl_workqueue_done(sq, a);
    pthread_join(th, NULL);
    CU_ASSERT_EQUAL(atomic_load(&drain_done), 1);
    CU_ASSERT_EQUAL(csl_workqueue_in_flight(sq), 0);
    CU_ASSERT_PTR_NULL(csl_workqueue_get(sq));
    /* drain with nothing in flight returns at once */
    csl_workqueue_shutdown_drain(sq);
    csl_workqueue_free(sq);
}

/* ------------------------------------------------------------- metrics */

static double metric(csl_metrics *reg, const char *name, bool histogram, bool counter)
{
    const char *const *labels = CSL_LABELS("name");
    static const double b[] = {1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1, 10, 100, 1000};
    csl_metric *m = histogram ? csl_metrics_histogram(reg, name, "", labels, b, 12)
                    : counter ? csl_metrics_counter(reg, name, "", labels)
                              : csl_metrics_gauge(reg, name, "", labels);
    CU_ASSERT_PTR_NOT_NULL(m); /* the same shape as the queue's */
    return csl_metric_value(m, CSL_LABELS("ctl"));
}

#define GAUGE(n) metric(reg, "workqueue_" n, false, false)
#define COUNTER(n) metric(reg, "workqueue_" n, false, true)
#define HCOUNT(n) metric(reg, "workqueue_" n, true, false)

static char *render(csl_metrics *reg)
{
    csl_buf out = CSL_BUF_INIT;
    CU_ASSERT(csl_metrics_render(reg, &out));
    return csl_buf_steal(&out);
}

static double sample(const char *text, const char *prefix)
{
    size_t n = strlen(prefix);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, prefix, n) == 0) return strtod(p + n, NULL);
    return NAN;
}

static void test_metrics(void)
{
    csl_metrics *reg = csl_metrics_new();
    csl_ratelimit rl = {10 * MS, 1 * SEC, 0, 0};
    csl_workqueue *q = new_queue("ctl", &rl, reg);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);

    /* every series exists from the start */
    char *text = render(reg);
    CU_ASSERT_EQUAL(sample(text, "workqueue_depth{name=\"ctl\"} "), 0);
    CU_ASSERT_EQUAL(sample(text, "workqueue_adds_total{name=\"ctl\"} "), 0);
    CU_ASSERT_EQUAL(sample(text, "workqueue_retries_total{name=\"ctl\"} "), 0);
    CU_ASSERT_EQUAL(sample(text, "workqueue_unfinished_work_seconds{name=\"ctl\"} "), 0);
    CU_ASSERT_EQUAL(sample(text, "workqueue_longest_running_processor_seconds{name=\"ctl\"} "), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "# TYPE workqueue_queue_duration_seconds histogram"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "# TYPE workqueue_work_duration_seconds histogram"));
    free(text);

    csl_workqueue_add(q, "ns/a");
    csl_workqueue_add(q, "ns/a"); /* deduplicated: not an add */
    csl_workqueue_add(q, "ns/b");
    CU_ASSERT_EQUAL(COUNTER("adds_total"), 2);
    CU_ASSERT_EQUAL(GAUGE("depth"), 2);

    const char *a = get_soon(q);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL(GAUGE("depth"), 1);
    CU_ASSERT_EQUAL(HCOUNT("queue_duration_seconds"), 1);
    csl_workqueue_add(q, "ns/a"); /* dirty while processed: counted, as client-go */
    CU_ASSERT_EQUAL(COUNTER("adds_total"), 3);
    CU_ASSERT_EQUAL(GAUGE("depth"), 2);

    /* in-progress time, computed at scrape */
    const char *b = get_soon(q);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    csl_sleep_ns(30 * MS);
    text = render(reg);
    double unfinished = sample(text, "workqueue_unfinished_work_seconds{name=\"ctl\"} ");
    double longest = sample(text, "workqueue_longest_running_processor_seconds{name=\"ctl\"} ");
    CU_ASSERT(longest >= 0.030 && longest < 30);
    CU_ASSERT(unfinished >= 0.060 && unfinished >= longest && unfinished <= 2 * longest);
    free(text);

    csl_workqueue_done(q, b);
    csl_workqueue_done(q, a); /* re-queued: depth unchanged */
    CU_ASSERT_EQUAL(HCOUNT("work_duration_seconds"), 2);
    CU_ASSERT_EQUAL(GAUGE("depth"), 1);
    CU_ASSERT(get_is(q, "ns/a"));
    CU_ASSERT_EQUAL(GAUGE("depth"), 0);

    /* delayed adds count retries; their adds land when due */
    csl_workqueue_add_after(q, "ns/c", 0);
    CU_ASSERT_EQUAL(COUNTER("retries_total"), 1);
    CU_ASSERT_EQUAL(COUNTER("adds_total"), 4);
    csl_workqueue_add_rate_limited(q, "ns/d");
    csl_workqueue_add_rate_limited(q, "ns/d");
    CU_ASSERT_EQUAL(COUNTER("retries_total"), 3);
    CU_ASSERT_EQUAL(COUNTER("adds_total"), 4); /* d not due yet */
    CU_ASSERT(get_is(q, "ns/c"));
    CU_ASSERT(get_is(q, "ns/d"));
    CU_ASSERT_EQUAL(COUNTER("adds_total"), 5); /* d once, deadlines merged */
    CU_ASSERT_EQUAL(HCOUNT("queue_duration_seconds"), 5);
    CU_ASSERT_EQUAL(HCOUNT("work_duration_seconds"), 5);
    CU_ASSERT_EQUAL(GAUGE("depth"), 0);

    text = render(reg);
    CU_ASSERT_EQUAL(sample(text, "workqueue_unfinished_work_seconds{name=\"ctl\"} "), 0);
    CU_ASSERT_EQUAL(sample(text, "workqueue_queue_duration_seconds_count{name=\"ctl\"} "), 5);
    CU_ASSERT_EQUAL(
        sample(text, "workqueue_queue_duration_seconds_bucket{name=\"ctl\",le=\"1e-08\"} "), 0);
    CU_ASSERT_EQUAL(
        sample(text, "workqueue_work_duration_seconds_bucket{name=\"ctl\",le=\"+Inf\"} "), 5);
    free(text);

    /* a second queue shares the families under its own name */
    csl_workqueue *q2 = new_queue("other", NULL, reg);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q2);
    csl_workqueue_add(q2, "ns/z");
    const char *z = get_soon(q2);
    CU_ASSERT_PTR_NOT_NULL(z);
    CU_ASSERT_EQUAL(COUNTER("adds_total"), 5);
    text = render(reg);
    CU_ASSERT_EQUAL(sample(text, "workqueue_adds_total{name=\"other\"} "), 1);
    free(text);

    /* freed with ns/e queued: its gauges drop to 0 and its hook goes quiet
     * (rendering after free must not touch the queue: ASan would see it) */
    csl_workqueue_add(q, "ns/e");
    CU_ASSERT_EQUAL(GAUGE("depth"), 1);
    csl_workqueue_free(q);
    text = render(reg);
    CU_ASSERT_EQUAL(sample(text, "workqueue_depth{name=\"ctl\"} "), 0);
    CU_ASSERT(sample(text, "workqueue_unfinished_work_seconds{name=\"other\"} ") >= 0);
    free(text);
    if (z) csl_workqueue_done(q2, z);
    csl_workqueue_free(q2);
    text = render(reg);
    CU_ASSERT_EQUAL(sample(text, "workqueue_longest_running_processor_seconds{name=\"other\"} "),
                    0);
    free(text);

    /* a registry that already has a workqueue_depth of another shape */
    csl_metrics *bad = csl_metrics_new();
    csl_metrics_counter(bad, "workqueue_depth", "clash", NULL);
    char err[256];
    csl_workqueue_options opt = {"ctl", bad, NULL};
    CU_ASSERT_PTR_NULL(csl_workqueue_new(&opt, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "cannot register its metrics"));
    csl_metrics_free(bad);
    csl_metrics_free(reg);
}

/* --------------------------------------------------------------- suites */

static int suite_init(void)
{
    log_file = tmpfile();
    if (!log_file) return 1;
    csl_log_setup("test_workqueue", CSL_LOG_WARN, CSL_LOG_TEXT, fileno(log_file));
    return 0;
}

static int suite_cleanup(void)
{
    csl_log_setup("test_workqueue", CSL_LOG_WARN, CSL_LOG_TEXT, 2);
    fclose(log_file);
    return 0;
}

static CU_TestInfo limit_tests[] = {
    {"exponential back-off: 5ms doubling, capped, no overflow", test_backoff_maths},
    {"token bucket: burst, spacing, refill", test_token_bucket},
    {"rate limiter: max of per-key and bucket; forget; requeues", test_ratelimiter_when},
    {"bad limits refused with a clear message", test_ratelimit_check},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo queue_tests[] = {
    {"FIFO order and dedup (10000 keys)", test_fifo_and_dedup},
    {"re-add while processing: once more after done", test_readd_while_processing},
    {"4 workers, 3 keys: never concurrent, no lost change", test_no_concurrent_same_key},
    {"add_after: deadline order, earliest kept", test_add_after_order_and_dedup},
    {"an idle timer sleeps (no spin)", test_idle_timer_sleeps},
    {"rate-limited re-queue: real waits", test_rate_limited_real_waits},
    {"back-off to the 10 s cap under faketime x10", test_faketime_backoff},
    {"shutdown wakes getters, refuses keys", test_shutdown_wakes_getters},
    {"shutdown_drain waits for in-flight keys", test_shutdown_drain},
    {"metrics after a known sequence", test_metrics},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"ratelimit", suite_init, suite_cleanup, NULL, NULL, limit_tests},
    {"workqueue", suite_init, suite_cleanup, NULL, NULL, queue_tests},
    CU_SUITE_INFO_NULL,
};

CSL_TEST_MAIN(suites)
