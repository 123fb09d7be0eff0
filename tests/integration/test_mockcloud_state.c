/* test_mockcloud_state.c — the state file of the real mockcloud: what
 * survives a restart, what a kill -9 in the middle of a burst of creates
 * leaves behind, and how a corrupt file is refused.
 *
 * The promise under test: every create the client saw acknowledged (2xx) is
 * on disk before the reply left, and the file is always whole (temp file +
 * rename), so a restart after SIGKILL at any moment finds every acknowledged
 * instance, each idempotency key still bound to its instance. */
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>

#include "../testutil.h"
#include "mockcloud_harness.h"

#define WAIT_MS 10000

/* Starts s with the fast config, --state-file dir/state.json and extra. */
static int start_with_state(mch_server *s, const char *const *extra)
{
    static char state[MCH_PATH_LEN];
    snprintf(state, sizeof state, "%s/state.json", s->dir);
    const char *args[16];
    int n = 0;
    args[n++] = "--state-file";
    args[n++] = state;
    for (int i = 0; extra && extra[i] && n < 15; i++) args[n++] = extra[i];
    args[n] = NULL;
    return mch_start_with_config(s, MCH_FAST_CLOUD, args);
}

/* The state file parsed (kept until tear-down), or NULL with a message. */
static cJSON *read_state(const char *dir)
{
    char path[MCH_PATH_LEN];
    snprintf(path, sizeof path, "%s/state.json", dir);
    char *text = mch_read_file(path, NULL);
    if (!text) {
        fprintf(stderr, "  cannot read %s\n", path);
        return NULL;
    }
    cJSON *j = cJSON_Parse(text);
    if (!j) fprintf(stderr, "  %s is not JSON (%zu bytes)\n", path, strlen(text));
    free(text);
    return mch_keep(j);
}

/* True when the text of the state file contains "id". */
static bool state_mentions(const char *dir, const char *id)
{
    char path[MCH_PATH_LEN], needle[80];
    snprintf(path, sizeof path, "%s/state.json", dir);
    snprintf(needle, sizeof needle, "\"%s\"", id);
    char *text = mch_read_file(path, NULL);
    bool found = text && strstr(text, needle);
    free(text);
    return found;
}

/* Names in dir that are neither ours nor the state file: leftovers of the
 * state writer. Writes them space-separated into out; returns how many. */
static int stray_files(const char *dir, char *out, size_t outsz)
{
    static const char *const ours[] = {"state.json", "config.yaml", "port", NULL};
    DIR *d = opendir(dir);
    int n = 0;
    out[0] = '\0';
    if (!d) return -1;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *name = e->d_name;
        if (!strcmp(name, ".") || !strcmp(name, "..")) continue;
        if (!strncmp(name, "stdout.", 7) || !strncmp(name, "stderr.", 7)) continue;
        if (!strncmp(name, "run", 3)) continue;
        bool known = false;
        for (int i = 0; ours[i] && !known; i++) known = !strcmp(name, ours[i]);
        if (known) continue;
        n++;
        size_t l = strlen(out);
        snprintf(out + l, outsz - l, "%s%s", l ? " " : "", name);
    }
    closedir(d);
    return n;
}

/* The dump's count of instances ever created (what new ids are drawn
 * from), or -1 when the dump has none. */
static double created_counter(mch_server *s)
{
    mch_resp *r = mch_get(s, "/_mock/state");
    return mch_num(r->json, "counters.instances", -1);
}

/* ------------------------------------------------------------ restart */

static void test_restart_keeps_everything(void)
{
    mch_server *s = mch_new(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    const char *const seed[] = {"--seed", "7", NULL};
    CU_ASSERT_EQUAL_FATAL(start_with_state(s, seed), 0);

    char ids[3][64];
    char op_loc[256] = "";
    for (int i = 0; i < 3; i++) {
        char name[16], key[16];
        snprintf(name, sizeof name, "keep-%d", i);
        snprintf(key, sizeof key, "rk-%d", i);
        CU_ASSERT_EQUAL_FATAL(mch_create(s, name, "hk-1a", "\"owner\":\"restart\"", key, ids[i]),
                              202);
        if (i == 0) mch_header(&s->last, "Location", op_loc, sizeof op_loc);
    }
    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL_FATAL(mch_wait_state(s, ids[i], "running", WAIT_MS), 0);

    mch_resp *r = mch_send(s, "POST", "{}", "/v1/instances/%s/snapshots", ids[0]);
    CU_ASSERT_FATAL(mch_expect(r, 202));
    char snap[64];
    snprintf(snap, sizeof snap, "%s", mch_str(r->json, "id"));
    r = mch_send(s, "PATCH", "{\"cpu\":8}", "/v1/instances/%s", ids[1]);
    CU_ASSERT(mch_expect(r, 202));
    CU_ASSERT_EQUAL(mch_wait_state(s, ids[1], "running", WAIT_MS), 0);
    r = mch_send(s, "POST", NULL, "/v1/instances/%s/actions/stop", ids[2]);
    CU_ASSERT(mch_expect(r, 202));
    CU_ASSERT_EQUAL(mch_wait_state(s, ids[2], "stopped", WAIT_MS), 0);
    int64_t end = mch_now_ms() + WAIT_MS;
    do {
        r = mch_get(s, "/v1/snapshots/%s", snap);
        if (mch_streq(mch_str(r->json, "state"), "available")) break;
        mch_sleep_ms(20);
    } while (mch_now_ms() < end);
    CU_ASSERT(mch_streq(mch_str(r->json, "state"), "available"));

    /* One instance still pending at shutdown, and the newest id deleted. */
    r = mch_send(s, "PUT", "{\"create\":\"1500ms\"}", "/_mock/timings");
    CU_ASSERT(mch_expect(r, 200));
    char pend[64], gone[64];
    CU_ASSERT_EQUAL_FATAL(mch_create(s, "pend", "hk-1b", "\"owner\":\"restart\"", "rk-pend", pend),
                          202);
    CU_ASSERT_EQUAL_FATAL(mch_create(s, "gone", "hk-1b", NULL, "rk-gone", gone), 202);
    r = mch_del(s, "/v1/instances/%s", gone);
    CU_ASSERT(r->status / 100 == 2);
    CU_ASSERT_EQUAL(mch_wait_gone(s, "instances", gone, WAIT_MS), 0);
    r = mch_get(s, "/v1/instances/%s", pend);
    CU_ASSERT(mch_streq(mch_str(r->json, "state"), "pending"));

    double counter = created_counter(s);
    cJSON *before[3];
    for (int i = 0; i < 3; i++) {
        r = mch_get(s, "/v1/instances/%s", ids[i]);
        before[i] = mch_keep(r->json);
        r->json = NULL;
    }
    r = mch_get(s, "/v1/snapshots/%s", snap);
    cJSON *snap_before = mch_keep(r->json);
    r->json = NULL;

    CU_ASSERT_EQUAL_FATAL(mch_stop(s), 0);
    CU_ASSERT_PTR_NOT_NULL(read_state(s->dir));
    for (int i = 0; i < 3; i++) CU_ASSERT(state_mentions(s->dir, ids[i]));
    char stray[512];
    CU_ASSERT_EQUAL(stray_files(s->dir, stray, sizeof stray), 0);
    if (stray[0]) fprintf(stderr, "  left after a clean stop: %s\n", stray);

    CU_ASSERT_EQUAL_FATAL(start_with_state(s, seed), 0);
    CU_ASSERT_EQUAL(created_counter(s), counter);
    for (int i = 0; i < 3; i++) {
        r = mch_get(s, "/v1/instances/%s", ids[i]);
        CU_ASSERT(mch_expect(r, 200));
        CU_ASSERT(mch_world_same(before[i], r->json, "a restart"));
    }
    r = mch_get(s, "/v1/snapshots/%s", snap);
    CU_ASSERT(mch_world_same(snap_before, r->json, "a restart (snapshot)"));
    if (op_loc[0]) {
        r = mch_get(s, "%s", op_loc);
        CU_ASSERT(mch_expect(r, 200));
    }
    r = mch_get(s, "/v1/instances/%s", gone);
    CU_ASSERT(mch_is_error(r, 404, "NotFound"));

    /* The pending one finishes its create after the restart. */
    r = mch_get(s, "/v1/instances/%s", pend);
    CU_ASSERT(mch_expect(r, 200));
    CU_ASSERT_EQUAL(mch_wait_state(s, pend, "running", WAIT_MS), 0);

    /* Keys still bound: a replay answers the same instance, creates nothing. */
    char again[64];
    long st = mch_create(s, "keep-0", "hk-1a", "\"owner\":\"restart\"", "rk-0", again);
    CU_ASSERT_EQUAL(st, 200); /* a replay: 200, only the creating call is 202 */
    CU_ASSERT_STRING_EQUAL(again, ids[0]);
    st = mch_create(s, "pend", "hk-1b", "\"owner\":\"restart\"", "rk-pend", again);
    CU_ASSERT_EQUAL(st, 200); /* a replay: 200, only the creating call is 202 */
    CU_ASSERT_STRING_EQUAL(again, pend);
    st = mch_create(s, "other-body", "hk-1a", NULL, "rk-1", again);
    CU_ASSERT(mch_is_error(&s->last, 409, "IdempotencyMismatch"));
    r = mch_get(s, "/v1/instances?tag=owner=restart");
    CU_ASSERT_EQUAL(cJSON_GetArraySize(mch_at(r->json, "items")), 4);

    /* Ids keep advancing: no reuse, not even of the deleted newest (the
     * same seed as before, so a counter that went back would repeat ids). */
    char fresh[64];
    CU_ASSERT_EQUAL(mch_create(s, "fresh", "hk-1a", NULL, "rk-fresh", fresh), 202);
    for (int i = 0; i < 3; i++) CU_ASSERT_STRING_NOT_EQUAL(fresh, ids[i]);
    CU_ASSERT_STRING_NOT_EQUAL(fresh, pend);
    CU_ASSERT_STRING_NOT_EQUAL(fresh, gone);
    if (counter >= 0) CU_ASSERT(created_counter(s) > counter);
    r = mch_send(s, "POST", "{}", "/v1/instances/%s/snapshots", ids[1]);
    CU_ASSERT(mch_expect(r, 202));
    CU_ASSERT(!mch_streq(mch_str(r->json, "id"), snap));
    CU_ASSERT_EQUAL(mch_stop(s), 0);
}

static void test_sigterm_flushes(void)
{
    mch_server *s = mch_new(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL_FATAL(start_with_state(s, NULL), 0);
    char ids[5][64];
    for (int i = 0; i < 5; i++) {
        char key[16];
        snprintf(key, sizeof key, "f-%d", i);
        CU_ASSERT_EQUAL_FATAL(mch_create(s, "flush", "hk-1a", NULL, key, ids[i]), 202);
    }
    /* Transitions due at shutdown are on disk too: wait for running, stop. */
    CU_ASSERT_EQUAL(mch_wait_state(s, ids[4], "running", WAIT_MS), 0);
    CU_ASSERT_EQUAL_FATAL(mch_stop(s), 0);
    cJSON *st = read_state(s->dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    for (int i = 0; i < 5; i++) CU_ASSERT(state_mentions(s->dir, ids[i]));
    char stray[512];
    CU_ASSERT_EQUAL(stray_files(s->dir, stray, sizeof stray), 0);
    if (stray[0]) fprintf(stderr, "  left after a clean stop: %s\n", stray);

    /* A fresh start with no file yet is fine, and SIGINT also flushes. */
    mch_server *s2 = mch_new(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s2);
    CU_ASSERT_EQUAL_FATAL(start_with_state(s2, NULL), 0);
    char id[64];
    CU_ASSERT_EQUAL(mch_create(s2, "int", "hk-1a", NULL, NULL, id), 202);
    kill(s2->pid, SIGINT);
    int code = -1;
    CU_ASSERT_EQUAL(mch_wait_exit(s2->pid, 15000, &code), 0);
    CU_ASSERT_EQUAL(code, 0);
    s2->pid = 0;
    CU_ASSERT_EQUAL(mch_check_stderr(s2, false), 0);
    CU_ASSERT(state_mentions(s2->dir, id));
}

/* ------------------------------------------------------------ kill -9 */

/* Five kill moments rather than three: a non-atomic writer is torn by a
 * given kill only now and then, so more moments catch it more surely. */
enum { BURST = 200, BURST_THREADS = 2, ROUNDS = 5 };

typedef struct burst {
    const char *base;
    int round;
    int thread;
    atomic_int *acked;
    char (*ids)[64]; /* [BURST]: id when acknowledged, else "" */
} burst;

static void *burst_run(void *arg)
{
    burst *b = arg;
    CURL *c = curl_easy_init();
    int transport_errors = 0;
    for (int i = b->thread; c && i < BURST && transport_errors < 3; i += BURST_THREADS) {
        char body[1024], tags[96], key[48], name[32];
        snprintf(name, sizeof name, "b%d-%d", b->round, i);
        snprintf(tags, sizeof tags, "\"burst\":\"%d\",\"idx\":\"%d\"", b->round, i);
        snprintf(key, sizeof key, "burst-%d-%d", b->round, i);
        mch_instance_body(body, sizeof body, name, i % 2 ? "hk-1a" : "hk-1b", tags);
        mch_opts o = {.idem_key = key, .timeout_ms = 5000};
        mch_resp r;
        mch_http(c, b->base, "POST", "/v1/instances", body, NULL, &o, &r);
        if (r.cc == CURLE_OK && r.status == 202 && mch_str(r.json, "id")) {
            snprintf(b->ids[i], 64, "%s", mch_str(r.json, "id"));
            atomic_fetch_add(b->acked, 1);
            transport_errors = 0;
        } else if (r.cc != CURLE_OK) {
            transport_errors++;
        }
        mch_resp_clear(&r);
    }
    if (c) curl_easy_cleanup(c);
    return NULL;
}

/* Checks every acknowledged create of round is back after a restart: the
 * instance exists with its tags, its key replays to it, and no key made two
 * instances. Returns the number checked. */
static int check_round(mch_server *s, int round, char ids[BURST][64])
{
    int checked = 0;
    for (int i = 0; i < BURST; i++) {
        if (!ids[i][0]) continue;
        checked++;
        mch_resp *r = mch_get(s, "/v1/instances/%s", ids[i]);
        if (!mch_expect(r, 200)) {
            fprintf(stderr, "  round %d: acknowledged create %d (%s) lost\n", round, i, ids[i]);
            CU_FAIL("acknowledged create lost after kill -9");
            continue;
        }
        char idx[16];
        snprintf(idx, sizeof idx, "%d", i);
        CU_ASSERT(mch_streq(mch_str(r->json, "tags.idx"), idx));
        if (i % 10 == 0) {
            char tags[96], key[48], name[32], again[64];
            snprintf(name, sizeof name, "b%d-%d", round, i);
            snprintf(tags, sizeof tags, "\"burst\":\"%d\",\"idx\":\"%d\"", round, i);
            snprintf(key, sizeof key, "burst-%d-%d", round, i);
            long st = mch_create(s, name, i % 2 ? "hk-1a" : "hk-1b", tags, key, again);
            CU_ASSERT_EQUAL(st, 200); /* a replay: 200, only the creating call is 202 */
            CU_ASSERT_STRING_EQUAL(again, ids[i]);
        }
    }
    mch_resp *r = mch_get(s, "/v1/instances?tag=burst=%d&limit=500", round);
    CU_ASSERT(mch_expect(r, 200));
    const cJSON *items = mch_at(r->json, "items");
    CU_ASSERT(cJSON_GetArraySize(items) >= checked);
    CU_ASSERT(cJSON_GetArraySize(items) <= BURST);
    static unsigned char seen[BURST];
    memset(seen, 0, sizeof seen);
    const cJSON *it;
    cJSON_ArrayForEach(it, items)
    {
        const char *idx = mch_str(it, "tags.idx");
        int k = idx ? atoi(idx) : -1;
        CU_ASSERT(k >= 0 && k < BURST);
        if (k < 0 || k >= BURST) continue;
        if (seen[k]) fprintf(stderr, "  round %d: key %d made two instances\n", round, k);
        CU_ASSERT(!seen[k]);
        seen[k] = 1;
    }
    return checked;
}

static void test_kill9_during_burst(void)
{
    static char ids[ROUNDS][BURST][64];
    static const int kill_at[ROUNDS] = {15, 55, 100, 140, 185};
    /* One seed for every start: an id counter that lost ground would repeat
     * ids, which check_round and the final create catch. */
    const char *const seed[] = {"--seed", "11", NULL};
    memset(ids, 0, sizeof ids);
    mch_server *s = mch_new(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);

    for (int round = 0; round < ROUNDS; round++) {
        CU_ASSERT_EQUAL_FATAL(start_with_state(s, seed), 0);
        /* What survived the previous kills is still there on this start. */
        for (int p = 0; p < round; p++) check_round(s, p, ids[p]);

        atomic_int acked = 0;
        burst b[BURST_THREADS];
        pthread_t th[BURST_THREADS];
        for (int t = 0; t < BURST_THREADS; t++) {
            b[t] = (burst){
                .base = s->base, .round = round, .thread = t, .acked = &acked, .ids = ids[round]};
            CU_ASSERT_EQUAL_FATAL(pthread_create(&th[t], NULL, burst_run, &b[t]), 0);
        }
        int64_t end = mch_now_ms() + 60000;
        while (atomic_load(&acked) < kill_at[round] && mch_now_ms() < end) mch_sleep_ms(1);
        int at_kill = atomic_load(&acked);
        CU_ASSERT_EQUAL(mch_kill9(s), 0);
        for (int t = 0; t < BURST_THREADS; t++) pthread_join(th[t], NULL);
        int total = atomic_load(&acked);
        fprintf(stderr, "  round %d: killed at %d acknowledged (%d in all)\n", round, at_kill,
                total);
        CU_ASSERT(at_kill >= kill_at[round]);
        if (total == BURST)
            fprintf(stderr, "  round %d: the burst finished before the kill\n", round);

        /* Whole file, whatever the moment. */
        CU_ASSERT_PTR_NOT_NULL(read_state(s->dir));
        char stray[512];
        if (stray_files(s->dir, stray, sizeof stray) > 0)
            fprintf(stderr, "  round %d: left by the kill: %s\n", round, stray);
    }
    CU_ASSERT_EQUAL_FATAL(start_with_state(s, seed), 0);
    int all = 0;
    for (int round = 0; round < ROUNDS; round++) all += check_round(s, round, ids[round]);
    CU_ASSERT(all >= 15 + 55 + 100 + 140 + 185);
    double counter = created_counter(s);
    if (counter >= 0) CU_ASSERT(counter >= all);
    /* No id was handed out twice across the restarts. */
    for (int r1 = 0; r1 < ROUNDS; r1++)
        for (int i = 0; i < BURST; i++)
            for (int r2 = r1; ids[r1][i][0] && r2 < ROUNDS; r2++)
                for (int j = r2 == r1 ? i + 1 : 0; j < BURST; j++)
                    if (strcmp(ids[r1][i], ids[r2][j]) == 0) {
                        fprintf(stderr, "  id %s given to %d/%d and %d/%d\n", ids[r1][i], r1, i, r2,
                                j);
                        CU_FAIL("id reused across restarts");
                    }
    /* Ids still advance after all that. */
    char fresh[64];
    CU_ASSERT_EQUAL(mch_create(s, "after", "hk-1a", NULL, "after-kills", fresh), 202);
    for (int round = 0; round < ROUNDS; round++)
        for (int i = 0; i < BURST; i++)
            if (ids[round][i][0] && strcmp(ids[round][i], fresh) == 0) CU_FAIL("id reused");
    CU_ASSERT_EQUAL(mch_stop(s), 0);
}

/* ------------------------------------------------------------ corrupt file */

static void test_corrupt_state_refused(void)
{
    mch_server *s = mch_new(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL_FATAL(start_with_state(s, NULL), 0);
    char a[64], b[64];
    CU_ASSERT_EQUAL(mch_create(s, "a", "hk-1a", NULL, "ca", a), 202);
    CU_ASSERT_EQUAL(mch_create(s, "b", "hk-1a", NULL, "cb", b), 202);
    CU_ASSERT_EQUAL_FATAL(mch_stop(s), 0);

    char path[MCH_PATH_LEN], cfg[MCH_PATH_LEN];
    snprintf(path, sizeof path, "%s/state.json", s->dir);
    snprintf(cfg, sizeof cfg, "%s/config.yaml", s->dir);
    size_t len = 0;
    char *good = mch_keep_ptr(mch_read_file(path, &len), 0);
    CU_ASSERT_FATAL(good && len > 20);

    /* Truncated, wrong shape, garbage: each refused, the file untouched. */
    char half[64 * 1024];
    snprintf(half, sizeof half, "%.*s",
             (int)(len / 2 < sizeof half - 1 ? len / 2 : sizeof half - 1), good);
    const char *bad[] = {half, "{\"instances\": [", "[1, 2, 3]", "{\"instances\": \"many\"}",
                         "\x01\x02garbage"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CU_ASSERT_EQUAL_FATAL(mch_write_file(s->dir, "state.json", bad[i], NULL), 0);
        const char *const args[] = {"--config",    cfg, "--state-file", path, "--listen",
                                    "127.0.0.1:0", NULL};
        mch_exit ex;
        CU_ASSERT_EQUAL(mch_run(s->dir, args, 10000, &ex), 0);
        if (ex.code == 0 || ex.code >= 128 || !strstr(ex.err, path)) {
            fprintf(stderr, "  corrupt state case %zu: exit %d\n", i, ex.code);
            mch_print_tail("stderr", ex.err, 1500);
            CU_FAIL("corrupt state file not refused with its name");
        }
        char *now = mch_read_file(path, NULL);
        CU_ASSERT(now && strcmp(now, bad[i]) == 0);
        free(now);
    }

    /* The good file back, with stray temp-looking files beside it: starts. */
    CU_ASSERT_EQUAL_FATAL(mch_write_file(s->dir, "state.json", good, NULL), 0);
    CU_ASSERT_EQUAL(mch_write_file(s->dir, "state.json.tmp", "{\"trunc", NULL), 0);
    CU_ASSERT_EQUAL(mch_write_file(s->dir, ".state.json.tmp", "{\"trunc", NULL), 0);
    CU_ASSERT_EQUAL(mch_write_file(s->dir, "state.json.tmp.12345", "", NULL), 0);
    CU_ASSERT_EQUAL_FATAL(start_with_state(s, NULL), 0);
    mch_resp *r = mch_get(s, "/v1/instances/%s", a);
    CU_ASSERT(mch_expect(r, 200));
    r = mch_get(s, "/v1/instances/%s", b);
    CU_ASSERT(mch_expect(r, 200));
    CU_ASSERT_EQUAL(mch_create(s, "c", "hk-1a", NULL, "cc", NULL), 202);
    CU_ASSERT_EQUAL(mch_stop(s), 0);
    CU_ASSERT_PTR_NOT_NULL(read_state(s->dir));

    /* A state file that cannot be written is refused at start. */
    char nodir[MCH_PATH_LEN];
    snprintf(nodir, sizeof nodir, "%s/no/such/dir/state.json", s->dir);
    const char *const args[] = {"--state-file", nodir, "--listen", "127.0.0.1:0", NULL};
    mch_exit ex;
    CU_ASSERT_EQUAL(mch_run(s->dir, args, 10000, &ex), 0);
    CU_ASSERT(ex.code != 0 && ex.code < 128);
    CU_ASSERT_PTR_NOT_NULL(strstr(ex.err, nodir));
}

static CU_TestInfo state_tests[] = {
    {"restart keeps instances, snapshots, keys, ids", test_restart_keeps_everything},
    {"SIGTERM/SIGINT flush the state file", test_sigterm_flushes},
    {"kill -9 during a burst of creates, 5 moments", test_kill9_during_burst},
    {"corrupt state file refused, left untouched", test_corrupt_state_refused},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"mockcloud state file", NULL, NULL, NULL, mch_teardown, state_tests},
    CU_SUITE_INFO_NULL,
};

CSL_TEST_MAIN(suites)
