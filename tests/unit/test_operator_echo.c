/* test_operator_echo.c — recognising the watch's echo of the operator's
 * own writes: the echo after the reply, the echo before it, someone else's
 * change during a write, failed writes, many updates at once, and that an
 * object's state goes once nothing is pending. Threads race writes against
 * updates to check that no foreign change is ever swallowed. */
#include "../testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "../../operator/echo.h"

static void test_echo_after_reply(void)
{
    op_echo *e = op_echo_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    /* Nobody wrote: every update queues. */
    CU_ASSERT_TRUE(op_echo_update(e, "ns/a", "10"));
    op_echo_write_begin(e, "ns/a");
    CU_ASSERT_FALSE(op_echo_write_end(e, "ns/a", "11"));
    CU_ASSERT_EQUAL(op_echo_size(e), 1);
    /* The echo of our write: no pass; a second arrival of it is no echo. */
    CU_ASSERT_FALSE(op_echo_update(e, "ns/a", "11"));
    CU_ASSERT_EQUAL(op_echo_size(e), 0);
    CU_ASSERT_TRUE(op_echo_update(e, "ns/a", "11"));
    /* Someone else's version queues; another object is not confused. */
    op_echo_write_begin(e, "ns/a");
    CU_ASSERT_FALSE(op_echo_write_end(e, "ns/a", "12"));
    CU_ASSERT_TRUE(op_echo_update(e, "ns/b", "12"));
    CU_ASSERT_TRUE(op_echo_update(e, "ns/a", "13"));
    /* Two writes in a pass (metadata, then status): both echoes dropped. */
    op_echo_write_begin(e, "ns/c");
    op_echo_write_end(e, "ns/c", "20");
    op_echo_write_begin(e, "ns/c");
    op_echo_write_end(e, "ns/c", "21");
    CU_ASSERT_FALSE(op_echo_update(e, "ns/c", "20"));
    CU_ASSERT_FALSE(op_echo_update(e, "ns/c", "21"));
    CU_ASSERT_TRUE(op_echo_update(e, "ns/c", "22"));
    /* Forgetting drops what was pending. */
    op_echo_forget(e, "ns/a");
    CU_ASSERT_TRUE(op_echo_update(e, "ns/a", "12"));
    op_echo_free(e);
}

static void test_echo_before_reply(void)
{
    op_echo *e = op_echo_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    /* The echo beats the reply: held, then dropped when the reply names it. */
    op_echo_write_begin(e, "ns/a");
    CU_ASSERT_FALSE(op_echo_update(e, "ns/a", "31"));
    CU_ASSERT_FALSE(op_echo_write_end(e, "ns/a", "31"));
    CU_ASSERT_EQUAL(op_echo_size(e), 0);
    /* A foreign change during the write: the write's end says queue. */
    op_echo_write_begin(e, "ns/a");
    CU_ASSERT_FALSE(op_echo_update(e, "ns/a", "32"));
    CU_ASSERT_TRUE(op_echo_write_end(e, "ns/a", "33"));
    /* …and our own echo, arriving after, is still recognised. */
    CU_ASSERT_FALSE(op_echo_update(e, "ns/a", "33"));
    /* Foreign change and our echo both during the write, in either order. */
    op_echo_write_begin(e, "ns/a");
    op_echo_update(e, "ns/a", "35");
    op_echo_update(e, "ns/a", "34");
    CU_ASSERT_TRUE(op_echo_write_end(e, "ns/a", "35"));
    /* A failed write (a conflict: someone else wrote): queue. */
    op_echo_write_begin(e, "ns/a");
    CU_ASSERT_FALSE(op_echo_update(e, "ns/a", "40"));
    CU_ASSERT_TRUE(op_echo_write_end(e, "ns/a", NULL));
    /* A failed write with nothing meanwhile: nothing to do. */
    op_echo_write_begin(e, "ns/a");
    CU_ASSERT_FALSE(op_echo_write_end(e, "ns/a", NULL));
    /* More updates than are held: queue, whatever the write produced. */
    op_echo_write_begin(e, "ns/a");
    char rv[16];
    for (int i = 0; i < 8; i++) {
        snprintf(rv, sizeof rv, "%d", 50 + i);
        CU_ASSERT_FALSE(op_echo_update(e, "ns/a", rv));
    }
    CU_ASSERT_TRUE(op_echo_write_end(e, "ns/a", "57"));
    /* No version: never an echo. */
    CU_ASSERT_TRUE(op_echo_update(e, "ns/a", ""));
    CU_ASSERT_TRUE(op_echo_update(e, "ns/a", NULL));
    op_echo_free(e);
}

/* A writer and a watcher race on one key: the writer's versions are even,
 * a stranger's are odd. Every odd version must queue — through the update
 * or through the write's end — and no even one may. */
enum { ROUNDS = 20000 };

typedef struct race {
    op_echo *e;
    pthread_mutex_t mu;
    int next_even;    /* the writer's next version */
    int queued_odd;   /* foreign changes that led to a queue */
    int queued_wrong; /* queues that no foreign change explains */
    int pending_odd;  /* foreign changes not yet accounted for */
} race;

static void *writer(void *arg)
{
    race *r = arg;
    char rv[16];
    for (int i = 0; i < ROUNDS; i++) {
        op_echo_write_begin(r->e, "ns/x");
        snprintf(rv, sizeof rv, "%d", 2 * (i + 1));
        /* The echo comes before the reply on every other round, after it
         * on the others; either way it must not queue. */
        bool echo_queued = i % 2 == 0 && op_echo_update(r->e, "ns/x", rv);
        bool q = op_echo_write_end(r->e, "ns/x", rv);
        if (i % 2 == 1) echo_queued = op_echo_update(r->e, "ns/x", rv);
        pthread_mutex_lock(&r->mu);
        if (echo_queued) r->queued_wrong++;
        if (q) {
            if (r->pending_odd > 0) {
                r->queued_odd += r->pending_odd;
                r->pending_odd = 0;
            } else {
                r->queued_wrong++;
            }
        }
        pthread_mutex_unlock(&r->mu);
    }
    return NULL;
}

static void *stranger(void *arg)
{
    race *r = arg;
    char rv[16];
    for (int i = 0; i < ROUNDS / 4; i++) {
        snprintf(rv, sizeof rv, "%d", 2 * i + 1);
        pthread_mutex_lock(&r->mu);
        bool q = op_echo_update(r->e, "ns/x", rv);
        if (q)
            r->queued_odd++;
        else
            r->pending_odd++;
        pthread_mutex_unlock(&r->mu);
    }
    return NULL;
}

static void test_race(void)
{
    race r = {.e = op_echo_new()};
    CU_ASSERT_PTR_NOT_NULL_FATAL(r.e);
    pthread_mutex_init(&r.mu, NULL);
    pthread_t a, b;
    pthread_create(&a, NULL, writer, &r);
    pthread_create(&b, NULL, stranger, &r);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    /* A last write settles anything held. */
    op_echo_write_begin(r.e, "ns/x");
    if (op_echo_write_end(r.e, "ns/x", NULL)) {
        r.queued_odd += r.pending_odd;
        r.pending_odd = 0;
    }
    CU_ASSERT_EQUAL(r.pending_odd, 0);
    CU_ASSERT_EQUAL(r.queued_odd, ROUNDS / 4);
    CU_ASSERT_EQUAL(r.queued_wrong, 0);
    pthread_mutex_destroy(&r.mu);
    op_echo_free(r.e);
}

static CU_TestInfo echo_tests[] = {
    {"the echo after the reply", test_echo_after_reply},
    {"the echo before the reply; foreign changes during a write", test_echo_before_reply},
    {"a writer and a stranger race: no foreign change is lost", test_race},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"echo", NULL, NULL, NULL, NULL, echo_tests},
    CU_SUITE_INFO_NULL,
};

CSL_TEST_MAIN(suites)
