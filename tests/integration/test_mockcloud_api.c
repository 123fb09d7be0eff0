/* test_mockcloud_api.c — the /v1 cloud API, auth, the control API's simple
 * parts, bad input and command-line/config handling of the real mockcloud
 * binary, over loopback HTTP.
 *
 * Every test starts its own mockcloud (fast lifecycle timings from
 * --config) so no test depends on another's leftovers; bad requests are
 * checked twice: the error reply, and that the world (/_mock/state, rules,
 * tokens) is exactly as before. */
#include "../testutil.h"
#include "mockcloud_harness.h"

#define WAIT_MS 10000

/* Starts a fresh server with config and extra args (NULL-terminated). */
static mch_server *start(const char *config, const char *const *extra)
{
    mch_server *s = mch_new(NULL);
    if (!s) return NULL;
    if (mch_start_with_config(s, config, extra) != 0) return NULL;
    return s;
}

/* Collects every id of a paginated list at path (which already has a '?'
 * query), limit per page; returns the number of ids (or -1 on an error or a
 * duplicate), *pages the pages read. */
static int list_all(mch_server *s, const char *query, int limit, char ids[][64], int max,
                    int *pages)
{
    char token[256] = "";
    int n = 0;
    *pages = 0;
    for (;;) {
        char path[1024];
        if (token[0])
            snprintf(path, sizeof path, "/v1/instances?%s&limit=%d&pageToken=%s", query, limit,
                     token);
        else
            snprintf(path, sizeof path, "/v1/instances?%s&limit=%d", query, limit);
        mch_resp *r = mch_get(s, "%s", path);
        if (!mch_expect(r, 200)) return -1;
        (*pages)++;
        const cJSON *items = mch_at(r->json, "items");
        if (!cJSON_IsArray(items)) return -1;
        if (cJSON_GetArraySize(items) > limit) {
            fprintf(stderr, "  page has %d items, limit %d\n", cJSON_GetArraySize(items), limit);
            return -1;
        }
        const cJSON *it;
        cJSON_ArrayForEach(it, items)
        {
            const char *id = mch_str(it, "id");
            if (!id || n >= max) return -1;
            for (int i = 0; i < n; i++) {
                if (strcmp(ids[i], id) == 0) {
                    fprintf(stderr, "  duplicate id %s across pages\n", id);
                    return -1;
                }
            }
            snprintf(ids[n++], 64, "%s", id);
        }
        const char *next = mch_str(r->json, "nextPageToken");
        if (!next || !*next) break;
        if (*pages > 50) return -1;
        snprintf(token, sizeof token, "%s", next);
    }
    return n;
}

/* Number of items in a list reply at path, or -1. */
static int count_items(mch_server *s, const char *path)
{
    mch_resp *r = mch_get(s, "%s", path);
    if (!mch_expect(r, 200)) return -1;
    const cJSON *items = mch_at(r->json, "items");
    return cJSON_IsArray(items) ? cJSON_GetArraySize(items) : -1;
}

/* ------------------------------------------------------------ instances */

static void test_create_and_lifecycle(void)
{
    mch_server *s = start(MCH_FAST_CLOUD, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);

    /* A slow create makes "pending" observable by polling too. */
    mch_resp *r = mch_send(s, "PUT", "{\"create\":\"1500ms\"}", "/_mock/timings");
    CU_ASSERT(mch_expect(r, 200));

    char body[1024];
    mch_instance_body(body, sizeof body, "web-1", "hk-1a", "\"owner\":\"t1\"");
    mch_opts o = {.idem_key = "create-1"};
    r = mch_req(s, "POST", "/v1/instances", body, &o);
    CU_ASSERT_FATAL(mch_expect(r, 202));
    char loc[256] = "", id[64] = "";
    CU_ASSERT(mch_header(r, "Location", loc, sizeof loc));
    CU_ASSERT(strncmp(loc, "/v1/operations/", 15) == 0);
    const char *got = mch_str(r->json, "id");
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    snprintf(id, sizeof id, "%s", got);
    CU_ASSERT_STRING_EQUAL(mch_str(r->json, "state"), "pending");
    CU_ASSERT(mch_streq(mch_str(r->json, "name"), "web-1"));
    CU_ASSERT_EQUAL(mch_num(r->json, "cpu", -1), 2);
    CU_ASSERT_EQUAL(mch_num(r->json, "memoryMiB", -1), 4096);
    CU_ASSERT_EQUAL(mch_num(r->json, "diskGiB", -1), 40);
    CU_ASSERT(mch_streq(mch_str(r->json, "image"), "debian-12"));
    CU_ASSERT(mch_streq(mch_str(r->json, "zone"), "hk-1a"));
    CU_ASSERT(mch_streq(mch_str(r->json, "networkType"), "standard"));
    CU_ASSERT_EQUAL(mch_num(r->json, "ipCount", -1), 1);
    CU_ASSERT(mch_streq(mch_str(r->json, "tags.owner"), "t1"));
    CU_ASSERT(cJSON_IsArray(mch_at(r->json, "ipAddresses")));
    CU_ASSERT_PTR_NOT_NULL(mch_str(r->json, "createdAt"));
    CU_ASSERT_PTR_NOT_NULL(mch_str(r->json, "updatedAt"));

    r = mch_get(s, "/v1/instances/%s", id);
    CU_ASSERT(mch_expect(r, 200));
    CU_ASSERT(mch_streq(mch_str(r->json, "state"), "pending"));

    /* The operation behind the 202. */
    r = mch_get(s, "%s", loc);
    CU_ASSERT(mch_expect(r, 200));
    CU_ASSERT(mch_streq(mch_str(r->json, "id"), loc + 15));

    CU_ASSERT_EQUAL(mch_wait_state(s, id, "running", WAIT_MS), 0);
    r = mch_get(s, "/v1/instances/%s", id);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(mch_at(r->json, "ipAddresses")), 1);

    r = mch_get(s, "/v1/operations/op-does-not-exist");
    CU_ASSERT(mch_is_error(r, 404, "NotFound"));
    r = mch_get(s, "/v1/instances/i-does-not-exist");
    CU_ASSERT(mch_is_error(r, 404, "NotFound"));

    r = mch_get(s, "/healthz");
    CU_ASSERT(mch_expect(r, 200));
    CU_ASSERT(mch_streq(mch_str(r->json, "status"), "ok"));
    CU_ASSERT_EQUAL_FATAL(mch_stop(s), 0);

    /* The start-up log gives the seed (to repeat the run) and warns that
     * auth is off. */
    char *err = mch_keep_ptr(mch_read_file(s->err_path, NULL), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(err);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "seed"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "WARN"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "--token"));
}

static void test_idempotency(void)
{
    mch_server *s = start(MCH_FAST_CLOUD, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    char id1[64], id2[64], loc1[256] = "", loc2[256] = "";
    CU_ASSERT_EQUAL(mch_create(s, "db", "hk-1a", "\"owner\":\"idem\"", "key-1", id1), 202);
    CU_ASSERT_FATAL(id1[0] != '\0');
    mch_header(&s->last, "Location", loc1, sizeof loc1);

    /* Same key, same body: the same instance and operation, whatever time
     * has passed. */
    long st = mch_create(s, "db", "hk-1a", "\"owner\":\"idem\"", "key-1", id2);
    CU_ASSERT_EQUAL(st, 200); /* a replay: 200, only the creating call is 202 */
    CU_ASSERT_STRING_EQUAL(id2, id1);
    mch_header(&s->last, "Location", loc2, sizeof loc2);
    CU_ASSERT_STRING_EQUAL(loc2, loc1);
    CU_ASSERT_EQUAL(mch_wait_state(s, id1, "running", WAIT_MS), 0);
    st = mch_create(s, "db", "hk-1a", "\"owner\":\"idem\"", "key-1", id2);
    CU_ASSERT_EQUAL(st, 200); /* a replay: 200, only the creating call is 202 */
    CU_ASSERT_STRING_EQUAL(id2, id1);
    CU_ASSERT_EQUAL(count_items(s, "/v1/instances?tag=owner=idem"), 1);

    /* Same key, another body: 409, and nothing changes. */
    cJSON *before = mch_world(s);
    CU_ASSERT_PTR_NOT_NULL_FATAL(before);
    st = mch_create(s, "db-other", "hk-1b", "\"owner\":\"idem\"", "key-1", id2);
    CU_ASSERT(mch_is_error(&s->last, 409, "IdempotencyMismatch"));
    CU_ASSERT(mch_world_same(before, mch_world(s), "409 IdempotencyMismatch"));

    /* Another key: another instance. */
    CU_ASSERT_EQUAL(mch_create(s, "db", "hk-1a", "\"owner\":\"idem\"", "key-2", id2), 202);
    CU_ASSERT_STRING_NOT_EQUAL(id2, id1);
    CU_ASSERT_EQUAL(count_items(s, "/v1/instances?tag=owner=idem"), 2);

    /* After the instance is gone a replay still finds it, as deleted, and
     * creates nothing (docs/mockcloud.md). */
    mch_resp *r = mch_del(s, "/v1/instances/%s", id1);
    CU_ASSERT(mch_expect(r, 202));
    CU_ASSERT_EQUAL(mch_wait_gone(s, "instances", id1, WAIT_MS), 0);
    st = mch_create(s, "db", "hk-1a", "\"owner\":\"idem\"", "key-1", id2);
    CU_ASSERT_EQUAL(st, 200);
    CU_ASSERT_STRING_EQUAL(id2, id1);
    CU_ASSERT(mch_streq(mch_str(s->last.json, "state"), "deleted"));
    CU_ASSERT_EQUAL(count_items(s, "/v1/instances?tag=owner=idem"), 1);
    CU_ASSERT_EQUAL(mch_stop(s), 0);
}

static void test_list_filters_and_pagination(void)
{
    mch_server *s = start(MCH_FAST_CLOUD, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    enum { N = 25 };
    char made[N][64];
    for (int i = 0; i < N; i++) {
        char name[32], tags[96], key[32];
        snprintf(name, sizeof name, "pg-%d", i);
        snprintf(tags, sizeof tags, "\"batch\":\"pg\",\"idx\":\"%d\"", i);
        snprintf(key, sizeof key, "pg-key-%d", i);
        CU_ASSERT_EQUAL_FATAL(mch_create(s, name, i % 2 ? "hk-1b" : "hk-1a", tags, key, made[i]),
                              202);
    }
    for (int i = 0; i < 3; i++) {
        char name[32];
        snprintf(name, sizeof name, "other-%d", i);
        CU_ASSERT_EQUAL(mch_create(s, name, "hk-1a", "\"batch\":\"other\"", NULL, NULL), 202);
    }
    for (int i = 0; i < N; i++) CU_ASSERT_EQUAL(mch_wait_state(s, made[i], "running", WAIT_MS), 0);

    static char ids[64][64];
    int pages = 0;
    int n = list_all(s, "tag=batch=pg", 10, ids, 64, &pages);
    CU_ASSERT_EQUAL(n, N);
    CU_ASSERT_EQUAL(pages, 3);
    for (int i = 0; i < N; i++) {
        bool seen = false;
        for (int j = 0; j < n && !seen; j++) seen = strcmp(made[i], ids[j]) == 0;
        CU_ASSERT(seen);
    }
    /* Without a filter the others are there too, still no duplicates. */
    n = list_all(s, "zone=hk-1a", 7, ids, 64, &pages);
    CU_ASSERT_EQUAL(n, 13 + 3);
    CU_ASSERT_EQUAL(pages, 3);

    CU_ASSERT_EQUAL(count_items(s, "/v1/instances?tag=batch=pg&zone=hk-1b"), 12);
    CU_ASSERT_EQUAL(count_items(s, "/v1/instances?tag=batch=pg&tag=idx=3"), 1);
    CU_ASSERT_EQUAL(count_items(s, "/v1/instances?tag=batch=none"), 0);
    CU_ASSERT_EQUAL(count_items(s, "/v1/instances?tag=batch=pg&state=running"), N);

    mch_resp *r = mch_send(s, "POST", NULL, "/v1/instances/%s/actions/stop", made[0]);
    CU_ASSERT(r->status / 100 == 2);
    r = mch_send(s, "POST", NULL, "/v1/instances/%s/actions/stop", made[1]);
    CU_ASSERT(r->status / 100 == 2);
    CU_ASSERT_EQUAL(mch_wait_state(s, made[0], "stopped", WAIT_MS), 0);
    CU_ASSERT_EQUAL(mch_wait_state(s, made[1], "stopped", WAIT_MS), 0);
    CU_ASSERT_EQUAL(count_items(s, "/v1/instances?tag=batch=pg&state=stopped"), 2);
    CU_ASSERT_EQUAL(count_items(s, "/v1/instances?tag=batch=pg&state=running"), N - 2);
    CU_ASSERT_EQUAL(count_items(s, "/v1/instances?state=stopped&zone=hk-1b"), 1);

    /* Bad list arguments are 400s naming them. */
    r = mch_get(s, "/v1/instances?limit=0");
    CU_ASSERT(mch_error_names(r, 400, "limit"));
    r = mch_get(s, "/v1/instances?colour=red");
    CU_ASSERT(mch_error_names(r, 400, "colour"));
    r = mch_get(s, "/v1/instances?state=flying");
    CU_ASSERT(mch_error_names(r, 400, "state"));
    r = mch_get(s, "/v1/instances?pageToken=garbage!!");
    CU_ASSERT(mch_is_error(r, 400, NULL));
    CU_ASSERT_EQUAL(mch_stop(s), 0);
}

static void test_delete(void)
{
    mch_server *s = start(MCH_FAST_CLOUD, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    char id[64], keep[64];
    CU_ASSERT_EQUAL_FATAL(mch_create(s, "gone", "hk-1a", "\"t\":\"del\"", NULL, id), 202);
    CU_ASSERT_EQUAL_FATAL(mch_create(s, "stays", "hk-1a", "\"t\":\"del\"", NULL, keep), 202);
    CU_ASSERT_EQUAL(mch_wait_state(s, id, "running", WAIT_MS), 0);

    mch_resp *r = mch_send(s, "PUT", "{\"delete\":\"1500ms\"}", "/_mock/timings");
    CU_ASSERT(mch_expect(r, 200));
    r = mch_del(s, "/v1/instances/%s", id);
    CU_ASSERT(mch_expect(r, 202));
    char loc[256];
    CU_ASSERT(mch_header(r, "Location", loc, sizeof loc) &&
              strncmp(loc, "/v1/operations/", 15) == 0);
    r = mch_get(s, "/v1/instances/%s", id);
    CU_ASSERT(mch_expect(r, 200));
    CU_ASSERT(mch_streq(mch_str(r->json, "state"), "deleting"));
    CU_ASSERT_EQUAL(mch_wait_gone(s, "instances", id, WAIT_MS), 0);
    r = mch_get(s, "/v1/instances/%s", id);
    CU_ASSERT(mch_is_error(r, 404, "NotFound"));
    r = mch_del(s, "/v1/instances/%s", id);
    CU_ASSERT(mch_is_error(r, 404, "NotFound"));

    r = mch_get(s, "/v1/instances?tag=t=del");
    CU_ASSERT(mch_expect(r, 200));
    CU_ASSERT_EQUAL(cJSON_GetArraySize(mch_at(r->json, "items")), 1);
    CU_ASSERT(mch_streq(mch_str(cJSON_GetArrayItem(mch_at(r->json, "items"), 0), "id"), keep));
    CU_ASSERT_EQUAL(mch_stop(s), 0);
}

static void test_resize(void)
{
    mch_server *s = start(MCH_FAST_CLOUD, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    char id[64];
    CU_ASSERT_EQUAL_FATAL(mch_create(s, "big", "hk-1a", NULL, NULL, id), 202);

    /* Resizing a pending instance is refused. */
    mch_resp *r =
        mch_send(s, "PUT", "{\"create\":\"1500ms\",\"resize\":\"1500ms\"}", "/_mock/timings");
    CU_ASSERT(mch_expect(r, 200));
    char pend[64];
    CU_ASSERT_EQUAL_FATAL(mch_create(s, "slow", "hk-1a", NULL, NULL, pend), 202);
    r = mch_send(s, "PATCH", "{\"cpu\":4}", "/v1/instances/%s", pend);
    CU_ASSERT(mch_is_error(r, 409, "InvalidState"));

    CU_ASSERT_EQUAL_FATAL(mch_wait_state(s, id, "running", WAIT_MS), 0);
    r = mch_send(s, "PATCH", "{\"cpu\":4,\"memoryMiB\":8192,\"diskGiB\":80}", "/v1/instances/%s",
                 id);
    CU_ASSERT(mch_expect(r, 202));
    char loc[256];
    CU_ASSERT(mch_header(r, "Location", loc, sizeof loc));
    r = mch_get(s, "/v1/instances/%s", id);
    CU_ASSERT(mch_streq(mch_str(r->json, "state"), "resizing"));
    CU_ASSERT_EQUAL(mch_wait_state(s, id, "running", WAIT_MS), 0);
    r = mch_get(s, "/v1/instances/%s", id);
    CU_ASSERT_EQUAL(mch_num(r->json, "cpu", -1), 4);
    CU_ASSERT_EQUAL(mch_num(r->json, "memoryMiB", -1), 8192);
    CU_ASSERT_EQUAL(mch_num(r->json, "diskGiB", -1), 80);

    /* Shrinking the disk: 400, no change. */
    CU_ASSERT_EQUAL(mch_wait_state(s, pend, "running", WAIT_MS), 0);
    cJSON *before = mch_world(s);
    CU_ASSERT_PTR_NOT_NULL_FATAL(before);
    r = mch_send(s, "PATCH", "{\"diskGiB\":20}", "/v1/instances/%s", id);
    CU_ASSERT(mch_is_error(r, 400, "DiskShrinkNotAllowed"));
    r = mch_send(s, "PATCH", "{\"cpu\":\"four\"}", "/v1/instances/%s", id);
    CU_ASSERT(mch_error_names(r, 400, "cpu"));
    r = mch_send(s, "PATCH", "{\"zone\":\"hk-1b\"}", "/v1/instances/%s", id);
    CU_ASSERT(mch_error_names(r, 400, "zone"));
    r = mch_send(s, "PATCH", "{\"cpu\":4}", "/v1/instances/i-nope");
    CU_ASSERT(mch_is_error(r, 404, "NotFound"));
    CU_ASSERT(mch_world_same(before, mch_world(s), "bad resizes"));
    CU_ASSERT_EQUAL(mch_stop(s), 0);
}

static void test_power_actions(void)
{
    mch_server *s = start(MCH_FAST_CLOUD, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    char id[64];
    CU_ASSERT_EQUAL_FATAL(mch_create(s, "pw", "hk-1b", NULL, NULL, id), 202);
    CU_ASSERT_EQUAL_FATAL(mch_wait_state(s, id, "running", WAIT_MS), 0);

    /* Repeating an action while its transition runs: 202, same operation. */
    mch_resp *r = mch_send(s, "PUT", "{\"stop\":\"1500ms\"}", "/_mock/timings");
    CU_ASSERT(mch_expect(r, 200));
    r = mch_send(s, "POST", NULL, "/v1/instances/%s/actions/stop", id);
    CU_ASSERT(mch_expect(r, 202));
    char op1[256] = "", op2[256] = "";
    CU_ASSERT(mch_header(r, "Location", op1, sizeof op1));
    r = mch_get(s, "/v1/instances/%s", id);
    CU_ASSERT(mch_streq(mch_str(r->json, "state"), "stopping"));
    r = mch_send(s, "POST", NULL, "/v1/instances/%s/actions/stop", id);
    CU_ASSERT(mch_expect(r, 202));
    CU_ASSERT(mch_header(r, "Location", op2, sizeof op2));
    CU_ASSERT_STRING_EQUAL(op2, op1);
    CU_ASSERT_EQUAL(mch_wait_state(s, id, "stopped", WAIT_MS), 0);
    r = mch_send(s, "POST", NULL, "/v1/instances/%s/actions/start", id);
    CU_ASSERT(mch_expect(r, 202));
    CU_ASSERT_EQUAL(mch_wait_state(s, id, "running", WAIT_MS), 0);

    r = mch_send(s, "PUT", "{\"reboot\":\"1500ms\"}", "/_mock/timings");
    CU_ASSERT(mch_expect(r, 200));
    r = mch_send(s, "POST", NULL, "/v1/instances/%s/actions/reboot", id);
    CU_ASSERT(mch_expect(r, 202));
    r = mch_get(s, "/v1/instances/%s", id);
    CU_ASSERT(mch_streq(mch_str(r->json, "state"), "rebooting"));
    CU_ASSERT_EQUAL(mch_wait_state(s, id, "running", WAIT_MS), 0);

    cJSON *before = mch_world(s);
    CU_ASSERT_PTR_NOT_NULL_FATAL(before);
    /* Starting a running instance is a state error; an unknown action or
     * instance is refused. */
    r = mch_send(s, "POST", NULL, "/v1/instances/%s/actions/start", id);
    CU_ASSERT(mch_is_error(r, 409, "InvalidState"));
    r = mch_send(s, "POST", NULL, "/v1/instances/%s/actions/explode", id);
    CU_ASSERT(r->status == 400 || r->status == 404);
    CU_ASSERT(mch_is_error(r, r->status, NULL));
    r = mch_send(s, "POST", NULL, "/v1/instances/i-nope/actions/stop");
    CU_ASSERT(mch_is_error(r, 404, "NotFound"));
    CU_ASSERT(mch_world_same(before, mch_world(s), "refused actions"));
    CU_ASSERT_EQUAL(mch_stop(s), 0);
}

static void test_snapshots(void)
{
    mch_server *s = start(MCH_FAST_CLOUD, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    char a[64], b[64], sa[64] = "", sb[64] = "";
    CU_ASSERT_EQUAL_FATAL(mch_create(s, "snap-a", "hk-1a", NULL, NULL, a), 202);
    CU_ASSERT_EQUAL_FATAL(mch_create(s, "snap-b", "hk-1a", NULL, NULL, b), 202);
    CU_ASSERT_EQUAL_FATAL(mch_wait_state(s, a, "running", WAIT_MS), 0);
    CU_ASSERT_EQUAL_FATAL(mch_wait_state(s, b, "running", WAIT_MS), 0);

    mch_resp *r = mch_send(s, "POST", "{\"name\":\"nightly\"}", "/v1/instances/%s/snapshots", a);
    CU_ASSERT_FATAL(mch_expect(r, 202));
    char loc[256];
    CU_ASSERT(mch_header(r, "Location", loc, sizeof loc));
    CU_ASSERT_PTR_NOT_NULL_FATAL(mch_str(r->json, "id"));
    snprintf(sa, sizeof sa, "%s", mch_str(r->json, "id"));
    r = mch_send(s, "POST", "{}", "/v1/instances/%s/snapshots", b);
    CU_ASSERT_FATAL(mch_expect(r, 202));
    CU_ASSERT_PTR_NOT_NULL_FATAL(mch_str(r->json, "id"));
    snprintf(sb, sizeof sb, "%s", mch_str(r->json, "id"));
    CU_ASSERT_STRING_NOT_EQUAL(sa, sb);

    /* It becomes available. */
    int64_t end = mch_now_ms() + WAIT_MS;
    const char *st = NULL;
    do {
        r = mch_get(s, "/v1/snapshots/%s", sa);
        st = mch_str(r->json, "state");
        if (mch_streq(st, "available")) break;
        mch_sleep_ms(20);
    } while (mch_now_ms() < end);
    CU_ASSERT(mch_streq(st, "available"));

    char path[128];
    snprintf(path, sizeof path, "/v1/snapshots?instance=%s", a);
    r = mch_get(s, "%s", path);
    CU_ASSERT(mch_expect(r, 200));
    CU_ASSERT_EQUAL(cJSON_GetArraySize(mch_at(r->json, "items")), 1);
    CU_ASSERT(mch_streq(mch_str(cJSON_GetArrayItem(mch_at(r->json, "items"), 0), "id"), sa));
    CU_ASSERT_EQUAL(count_items(s, "/v1/snapshots"), 2);

    r = mch_del(s, "/v1/snapshots/%s", sa);
    CU_ASSERT(r->status / 100 == 2);
    CU_ASSERT_EQUAL(mch_wait_gone(s, "snapshots", sa, WAIT_MS), 0);
    CU_ASSERT_EQUAL(count_items(s, path), 0);
    CU_ASSERT_EQUAL(count_items(s, "/v1/snapshots"), 1);

    r = mch_send(s, "POST", "{}", "/v1/instances/i-nope/snapshots");
    CU_ASSERT(mch_is_error(r, 404, "NotFound"));
    r = mch_del(s, "/v1/snapshots/%s", sa);
    CU_ASSERT(mch_is_error(r, 404, "NotFound"));
    CU_ASSERT_EQUAL(mch_stop(s), 0);
}

/* ------------------------------------------------------------ auth */

static void test_auth(void)
{
    const char *const args[] = {"--token",       "rw-secret",  "--token", "ro-secret:ro",
                                "--admin-token", "adm-secret", NULL};
    mch_server *s = start(MCH_FAST_CLOUD, args);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    s->token = "rw-secret";
    s->admin = "adm-secret";
    char body[1024];
    mch_instance_body(body, sizeof body, "auth", "hk-1a", "\"t\":\"auth\"");

    mch_opts none = {.token = ""}, wrong = {.token = "nope"}, ro = {.token = "ro-secret"};
    mch_resp *r = mch_req(s, "GET", "/v1/instances", NULL, &none);
    CU_ASSERT(mch_is_error(r, 401, "Unauthorized"));
    char hv[128];
    CU_ASSERT(mch_header(r, "WWW-Authenticate", hv, sizeof hv) && strncmp(hv, "Bearer", 6) == 0);
    r = mch_req(s, "GET", "/v1/instances", NULL, &wrong);
    CU_ASSERT(mch_is_error(r, 401, "Unauthorized"));
    r = mch_req(s, "POST", "/v1/instances", body, &wrong);
    CU_ASSERT(mch_is_error(r, 401, "Unauthorized"));
    r = mch_req(s, "GET", "/v1/instances", NULL, &ro);
    CU_ASSERT(mch_expect(r, 200));
    r = mch_req(s, "POST", "/v1/instances", body, &ro);
    CU_ASSERT(mch_is_error(r, 403, "Forbidden"));
    CU_ASSERT_EQUAL(count_items(s, "/v1/instances?tag=t=auth"), 0);
    r = mch_req(s, "POST", "/v1/instances", body, NULL);
    CU_ASSERT(mch_expect(r, 202));
    CU_ASSERT_EQUAL(count_items(s, "/v1/instances?tag=t=auth"), 1);

    /* Always open. */
    r = mch_req(s, "GET", "/healthz", NULL, &none);
    CU_ASSERT(mch_expect(r, 200));
    r = mch_req(s, "GET", "/metrics", NULL, &none);
    CU_ASSERT(mch_expect(r, 200));

    /* The control API wants the admin token, not an API token. */
    r = mch_req(s, "GET", "/_mock/faults", NULL, &none);
    CU_ASSERT(mch_is_error(r, 401, NULL));
    r = mch_req(s, "GET", "/_mock/faults", NULL, &(mch_opts){.token = "rw-secret"});
    CU_ASSERT(r->status == 401 || r->status == 403);
    r = mch_req(s, "POST", "/_mock/tokens", "{\"token\":\"sneaky\",\"access\":\"read-write\"}",
                &(mch_opts){.token = "rw-secret"});
    CU_ASSERT(r->status == 401 || r->status == 403);
    r = mch_get(s, "/_mock/faults");
    CU_ASSERT(mch_expect(r, 200));

    /* Tokens added and revoked at run time take effect at once. */
    mch_opts late = {.token = "late-secret"}, rw = {.token = "rw-secret"};
    r = mch_req(s, "GET", "/v1/instances", NULL, &late);
    CU_ASSERT(mch_is_error(r, 401, "Unauthorized"));
    r = mch_send(s, "POST", "{\"token\":\"late-secret\",\"access\":\"read-write\"}",
                 "/_mock/tokens");
    CU_ASSERT(mch_expect(r, 201));
    r = mch_req(s, "GET", "/v1/instances", NULL, &late);
    CU_ASSERT(mch_expect(r, 200));
    r = mch_req(s, "POST", "/v1/instances", body, &late);
    CU_ASSERT(mch_expect(r, 202));
    r = mch_get(s, "/_mock/tokens");
    CU_ASSERT(mch_expect(r, 200));
    bool listed = false;
    const cJSON *it;
    cJSON_ArrayForEach(it, mch_at(r->json, "items"))
    {
        if (mch_streq(mch_str(it, "token"), "late-secret"))
            listed = mch_streq(mch_str(it, "access"), "read-write");
    }
    CU_ASSERT(listed);

    /* Downgrade to read-only, then revoke. */
    r = mch_send(s, "POST", "{\"token\":\"late-secret\",\"access\":\"read-only\"}",
                 "/_mock/tokens");
    CU_ASSERT(r->status / 100 == 2);
    r = mch_req(s, "POST", "/v1/instances", body, &late);
    CU_ASSERT(mch_is_error(r, 403, "Forbidden"));
    r = mch_del(s, "/_mock/tokens/rw-secret");
    CU_ASSERT(mch_expect(r, 204));
    r = mch_req(s, "GET", "/v1/instances", NULL, &rw);
    CU_ASSERT(mch_is_error(r, 401, "Unauthorized"));
    r = mch_del(s, "/_mock/tokens/never-was");
    CU_ASSERT(mch_is_error(r, 404, NULL));

    cJSON *before = mch_world(s);
    CU_ASSERT_PTR_NOT_NULL_FATAL(before);
    r = mch_send(s, "POST", "{\"token\":\"x\",\"access\":\"sudo\"}", "/_mock/tokens");
    CU_ASSERT(mch_error_names(r, 400, "access"));
    r = mch_send(s, "POST", "{\"access\":\"read-write\"}", "/_mock/tokens");
    CU_ASSERT(mch_error_names(r, 400, "token"));
    r = mch_send(s, "POST", "{\"token\":\"has space\",\"access\":\"read-write\"}", "/_mock/tokens");
    CU_ASSERT(mch_error_names(r, 400, "token"));
    CU_ASSERT(mch_world_same(before, mch_world(s), "bad token requests"));
    CU_ASSERT_EQUAL(mch_stop(s), 0);
}

static void test_tokens_file(void)
{
    mch_server *s = mch_new(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    char tf[MCH_PATH_LEN], cfg[MCH_PATH_LEN];
    CU_ASSERT_EQUAL_FATAL(
        mch_write_file(s->dir, "tokens", "# API tokens\n\nfile-rw rw\nfile-ro ro\nfile-def\n", tf),
        0);
    CU_ASSERT_EQUAL_FATAL(mch_write_file(s->dir, "cfg.yaml", MCH_FAST_CLOUD, cfg), 0);
    const char *const args[] = {"--config", cfg, "--tokens-file", tf, NULL};
    CU_ASSERT_EQUAL_FATAL(mch_start(s, args), 0);
    char body[1024];
    mch_instance_body(body, sizeof body, "tf", "hk-1a", NULL);
    mch_resp *r = mch_req(s, "POST", "/v1/instances", body, &(mch_opts){.token = "file-rw"});
    CU_ASSERT(mch_expect(r, 202));
    r = mch_req(s, "POST", "/v1/instances", body, &(mch_opts){.token = "file-def"});
    CU_ASSERT(mch_expect(r, 202));
    r = mch_req(s, "POST", "/v1/instances", body, &(mch_opts){.token = "file-ro"});
    CU_ASSERT(mch_is_error(r, 403, "Forbidden"));
    r = mch_req(s, "GET", "/v1/instances", NULL, &(mch_opts){.token = "file-ro"});
    CU_ASSERT(mch_expect(r, 200));
    r = mch_req(s, "GET", "/v1/instances", NULL, &(mch_opts){.token = ""});
    CU_ASSERT(mch_is_error(r, 401, "Unauthorized"));
    CU_ASSERT_EQUAL(mch_stop(s), 0);

    /* A bad line is named file:line and start-up fails. */
    char bad[MCH_PATH_LEN];
    CU_ASSERT_EQUAL_FATAL(mch_write_file(s->dir, "bad-tokens", "# ok\nfine rw\nodd sudo\n", bad),
                          0);
    const char *const args2[] = {"--tokens-file", bad, "--listen", "127.0.0.1:0", NULL};
    mch_exit ex;
    CU_ASSERT_EQUAL(mch_run(s->dir, args2, 10000, &ex), 0);
    CU_ASSERT(ex.code != 0 && ex.code < 128);
    char want[MCH_PATH_LEN + 8];
    snprintf(want, sizeof want, "%s:3", bad);
    CU_ASSERT_PTR_NOT_NULL(strstr(ex.err, want));
    if (!strstr(ex.err, want)) mch_print_tail("stderr", ex.err, 2000);
}

/* ------------------------------------------------------------ control API bits */

static void test_timings_capacity_reset(void)
{
    const char *const args[] = {"--token", "base-tok", NULL};
    mch_server *s = start(MCH_FAST_CLOUD "  capacity: {hk-1a: 2}\n", args);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    s->token = "base-tok";

    mch_resp *r = mch_get(s, "/_mock/timings");
    CU_ASSERT(mch_expect(r, 200));
    CU_ASSERT_PTR_NOT_NULL(mch_at(r->json, "create"));
    CU_ASSERT_PTR_NOT_NULL(mch_at(r->json, "snapshot"));
    r = mch_send(s, "PUT",
                 "{\"create\":{\"distribution\":\"uniform\",\"min\":\"10ms\",\"max\":\"20ms\"}}",
                 "/_mock/timings");
    CU_ASSERT(mch_expect(r, 200));
    r = mch_get(s, "/_mock/timings");
    CU_ASSERT(mch_streq(mch_str(r->json, "create.distribution"), "uniform"));
    /* A partial update keeps the others. */
    CU_ASSERT(mch_streq(mch_str(r->json, "delete.distribution"), "fixed"));

    r = mch_get(s, "/_mock/capacity");
    CU_ASSERT(mch_expect(r, 200));
    char id[64];
    CU_ASSERT_EQUAL(mch_create(s, "c1", "hk-1a", NULL, NULL, id), 202);
    CU_ASSERT_EQUAL(mch_create(s, "c2", "hk-1a", NULL, NULL, id), 202);
    cJSON *before = mch_world(s);
    CU_ASSERT_PTR_NOT_NULL_FATAL(before);
    long st = mch_create(s, "c3", "hk-1a", NULL, NULL, id);
    CU_ASSERT(st == 409 || st == 507);
    CU_ASSERT(mch_is_error(&s->last, st, "InsufficientCapacity"));
    CU_ASSERT(mch_world_same(before, mch_world(s), "InsufficientCapacity"));
    CU_ASSERT_EQUAL(mch_create(s, "c3", "hk-1b", NULL, NULL, id), 202);
    r = mch_send(s, "PUT", "{\"zones\":{\"hk-1a\":3}}", "/_mock/capacity");
    CU_ASSERT(mch_expect(r, 200));
    CU_ASSERT_EQUAL(mch_create(s, "c3", "hk-1a", NULL, NULL, id), 202);
    r = mch_send(s, "PUT", "{\"zones\":{\"hk-1a\":null}}", "/_mock/capacity");
    CU_ASSERT(mch_expect(r, 200));
    CU_ASSERT_EQUAL(mch_create(s, "c4", "hk-1a", NULL, NULL, id), 202);

    /* Reset: no instances, no rules, tokens back to the start-up set. */
    CU_ASSERT_EQUAL(mch_add_rule(s, "{\"id\":\"r\",\"match\":{\"op\":\"GetSnapshot\"},"
                                    "\"effect\":{\"type\":\"error\",\"status\":500}}"),
                    0);
    r = mch_send(s, "POST", "{\"token\":\"extra\",\"access\":\"read-only\"}", "/_mock/tokens");
    CU_ASSERT(mch_expect(r, 201));
    r = mch_del(s, "/_mock/tokens/base-tok");
    CU_ASSERT(mch_expect(r, 204));
    r = mch_send(s, "POST", NULL, "/_mock/reset");
    CU_ASSERT(mch_expect(r, 204));
    CU_ASSERT_EQUAL(count_items(s, "/v1/instances"), 0);
    CU_ASSERT_EQUAL(count_items(s, "/_mock/faults"), 0);
    r = mch_get(s, "/_mock/journal/count?op=CreateInstance");
    CU_ASSERT_EQUAL(mch_num(r->json, "count", -1), 0);
    r = mch_req(s, "GET", "/v1/instances", NULL, &(mch_opts){.token = "extra"});
    CU_ASSERT(mch_is_error(r, 401, "Unauthorized"));
    /* Capacity is back to the configured 2 (reset baseline). */
    CU_ASSERT_EQUAL(mch_create(s, "d1", "hk-1a", NULL, NULL, id), 202);
    CU_ASSERT_EQUAL(mch_create(s, "d2", "hk-1a", NULL, NULL, id), 202);
    st = mch_create(s, "d3", "hk-1a", NULL, NULL, id);
    CU_ASSERT(mch_is_error(&s->last, st, "InsufficientCapacity"));
    CU_ASSERT_EQUAL(mch_stop(s), 0);
}

/* ------------------------------------------------------------ bad input */

static void test_bad_input_changes_nothing(void)
{
    const char *const args[] = {"--max-body", "4096", NULL};
    mch_server *s = start(MCH_FAST_CLOUD, args);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    char id[64];
    CU_ASSERT_EQUAL_FATAL(mch_create(s, "base", "hk-1a", NULL, "base-key", id), 202);
    CU_ASSERT_EQUAL_FATAL(mch_wait_state(s, id, "running", WAIT_MS), 0);
    CU_ASSERT_EQUAL(mch_add_rule(s, "{\"id\":\"keep\",\"match\":{\"op\":\"GetSnapshot\"},"
                                    "\"effect\":{\"type\":\"error\",\"status\":500}}"),
                    0);
    cJSON *before = mch_world(s);
    CU_ASSERT_PTR_NOT_NULL_FATAL(before);
    mch_resp *r;

#define UNCHANGED(what) CU_ASSERT(mch_world_same(before, mch_world(s), what))

    r = mch_send(s, "POST", "{\"name\":\"x\",", "/v1/instances");
    CU_ASSERT(mch_is_error(r, 400, "InvalidRequest"));
    UNCHANGED("malformed JSON");

    r = mch_send(s, "POST", "[1,2,3]", "/v1/instances");
    CU_ASSERT(mch_is_error(r, 400, "InvalidRequest"));
    UNCHANGED("a JSON array as body");

    r = mch_send(s, "POST",
                 "{\"name\":\"x\",\"cpu\":\"two\",\"memoryMiB\":4096,\"diskGiB\":40,"
                 "\"image\":\"debian-12\",\"zone\":\"hk-1a\"}",
                 "/v1/instances");
    CU_ASSERT(mch_error_names(r, 400, "cpu"));
    UNCHANGED("wrong type");

    r = mch_send(s, "POST",
                 "{\"name\":\"x\",\"cpu\":2,\"memoryMiB\":4096,\"diskGiB\":40,"
                 "\"image\":\"debian-12\",\"zone\":\"hk-1a\",\"colour\":\"red\"}",
                 "/v1/instances");
    CU_ASSERT(mch_error_names(r, 400, "colour"));
    UNCHANGED("unknown field");

    r = mch_send(s, "POST",
                 "{\"name\":\"x\",\"cpu\":2,\"memoryMiB\":4096,\"diskGiB\":40,"
                 "\"image\":\"debian-12\",\"zone\":\"mars-1\"}",
                 "/v1/instances");
    CU_ASSERT(mch_is_error(r, 400, "InvalidZone"));
    r = mch_send(s, "POST",
                 "{\"name\":\"x\",\"cpu\":2,\"memoryMiB\":4096,\"diskGiB\":40,"
                 "\"image\":\"windows-95\",\"zone\":\"hk-1a\"}",
                 "/v1/instances");
    CU_ASSERT(mch_is_error(r, 400, "InvalidImage"));
    r = mch_send(s, "POST", "{\"name\":\"x\",\"cpu\":2}", "/v1/instances");
    CU_ASSERT(mch_is_error(r, 400, NULL));
    UNCHANGED("bad zone/image/missing fields");

    /* Oversized: over --max-body 4096. */
    size_t big = 10000;
    char *huge = malloc(big + 64);
    CU_ASSERT_PTR_NOT_NULL_FATAL(mch_keep_ptr(huge, 0));
    int n = snprintf(huge, big + 64, "{\"name\":\"");
    memset(huge + n, 'x', big);
    snprintf(huge + n + big, 64, "\",\"cpu\":2}");
    r = mch_send(s, "POST", huge, "/v1/instances");
    CU_ASSERT(mch_is_error(r, 413, NULL));
    r = mch_send(s, "POST", huge, "/_mock/faults");
    CU_ASSERT(mch_is_error(r, 413, NULL));
    UNCHANGED("oversized bodies");

    r = mch_get(s, "/v1/nothing-here");
    CU_ASSERT(mch_is_error(r, 404, "NotFound"));
    r = mch_get(s, "/nowhere");
    CU_ASSERT(mch_is_error(r, 404, "NotFound"));
    r = mch_get(s, "/_mock/nothing-here");
    CU_ASSERT(mch_is_error(r, 404, "NotFound"));
    r = mch_send(s, "PUT", "{}", "/v1/instances");
    CU_ASSERT(mch_is_error(r, 405, "MethodNotAllowed"));
    char allow[128];
    CU_ASSERT(mch_header(r, "Allow", allow, sizeof allow) && strstr(allow, "POST"));
    r = mch_del(s, "/v1/instances");
    CU_ASSERT(mch_is_error(r, 405, "MethodNotAllowed"));
    r = mch_send(s, "POST", "{}", "/v1/snapshots");
    CU_ASSERT(mch_is_error(r, 405, "MethodNotAllowed"));
    r = mch_send(s, "PUT", "{}", "/_mock/faults");
    CU_ASSERT(mch_is_error(r, 405, "MethodNotAllowed"));
    UNCHANGED("404/405");

    /* Invalid fault rules: 400 naming the field, nothing added. */
    r = mch_send(s, "POST", "{\"effect\":{\"type\":\"error\",\"status\":\"abc\"}}",
                 "/_mock/faults");
    CU_ASSERT(mch_error_names(r, 400, "status"));
    r = mch_send(s, "POST", "{\"effect\":{\"type\":\"explode\"}}", "/_mock/faults");
    CU_ASSERT(mch_error_names(r, 400, "type"));
    r = mch_send(s, "POST", "{\"effect\":{\"type\":\"reset\"},\"colour\":1}", "/_mock/faults");
    CU_ASSERT(mch_error_names(r, 400, "colour"));
    r = mch_send(s, "POST", "{\"effect\":{\"type\":\"reset\"},\"probability\":2}", "/_mock/faults");
    CU_ASSERT(mch_error_names(r, 400, "probability"));
    r = mch_send(s, "POST", "{\"effect\":{\"type\":\"latency\",\"latency\":\"fast\"}}",
                 "/_mock/faults");
    CU_ASSERT(mch_error_names(r, 400, "latency"));
    r = mch_send(s, "POST", "{\"id\":\"keep\",\"effect\":{\"type\":\"reset\"}}", "/_mock/faults");
    CU_ASSERT(mch_is_error(r, r->status == 409 ? 409 : 400, NULL));
    r = mch_send(s, "POST",
                 "{\"rules\":[{\"id\":\"ok1\",\"effect\":{\"type\":\"reset\"}},"
                 "{\"id\":\"bad2\",\"effect\":{\"type\":\"error\",\"status\":9999}}]}",
                 "/_mock/faults");
    CU_ASSERT(mch_error_names(r, 400, "status"));
    r = mch_send(s, "POST", "{not json", "/_mock/faults");
    CU_ASSERT(mch_is_error(r, 400, NULL));
    UNCHANGED("invalid fault rules");

    r = mch_send(s, "POST", "{\"count\":\"x\"}", "/_mock/chaos/crash");
    CU_ASSERT(mch_error_names(r, 400, "count"));
    r = mch_send(s, "POST", "{}", "/_mock/chaos/crash");
    CU_ASSERT(mch_is_error(r, 400, NULL));
    r = mch_send(s, "POST", "{\"fraction\":1.5}", "/_mock/chaos/crash");
    CU_ASSERT(mch_error_names(r, 400, "fraction"));
    r = mch_send(s, "PUT", "{\"create\":{\"distribution\":\"weird\"}}", "/_mock/timings");
    CU_ASSERT(mch_is_error(r, 400, NULL));
    r = mch_send(s, "PUT", "{\"teleport\":\"1s\"}", "/_mock/timings");
    CU_ASSERT(mch_error_names(r, 400, "teleport"));
    r = mch_send(s, "PUT", "{\"zones\":{\"hk-1a\":\"many\"}}", "/_mock/capacity");
    CU_ASSERT(mch_error_names(r, 400, "hk-1a"));
    r = mch_send(s, "POST", "{\"mode\":\"fire\",\"duration\":\"1s\"}", "/_mock/outage");
    CU_ASSERT(mch_error_names(r, 400, "mode"));
    r = mch_send(s, "POST", "{\"mode\":\"503\",\"duration\":\"soon\"}", "/_mock/outage");
    CU_ASSERT(mch_error_names(r, 400, "duration"));
    r = mch_get(s, "/_mock/journal?status=abc");
    CU_ASSERT(mch_error_names(r, 400, "status"));
    UNCHANGED("bad control requests");

    /* A 400 with an Idempotency-Key does not burn the key. */
    mch_opts o = {.idem_key = "fresh-key"};
    r = mch_req(s, "POST", "/v1/instances", "{\"name\":", &o);
    CU_ASSERT(mch_is_error(r, 400, "InvalidRequest"));
    UNCHANGED("bad create with a key");
    CU_ASSERT_EQUAL(mch_create(s, "after", "hk-1a", NULL, "fresh-key", id), 202);
#undef UNCHANGED
    CU_ASSERT_EQUAL(mch_stop(s), 0);
}

/* ------------------------------------------------------------ command line, config */

static void test_help_and_bad_flags(void)
{
    const char *dir = mch_tmpdir();
    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    mch_exit ex;
    const char *const help[] = {"--help", NULL};
    CU_ASSERT_EQUAL(mch_run(dir, help, 10000, &ex), 0);
    CU_ASSERT_EQUAL(ex.code, 0);
    static const char *const flags[] = {"--listen",
                                        "--port-file",
                                        "--token",
                                        "--tokens-file",
                                        "--admin-token",
                                        "--seed",
                                        "--config",
                                        "--state-file",
                                        "--journal-size",
                                        "--max-body",
                                        "--threads",
                                        "--max-connections",
                                        "--log-format",
                                        "--log-level",
                                        "--help",
                                        "--version",
                                        NULL};
    for (int i = 0; flags[i]; i++) {
        if (!strstr(ex.out, flags[i])) {
            fprintf(stderr, "  --help does not list %s\n", flags[i]);
            CU_FAIL("--help misses a flag");
        }
    }
    const char *const version[] = {"--version", NULL};
    CU_ASSERT_EQUAL(mch_run(dir, version, 10000, &ex), 0);
    CU_ASSERT_EQUAL(ex.code, 0);
    CU_ASSERT(strlen(ex.out) > 0);

    static const char *const bad[][4] = {
        {"--bogus", NULL},
        {"--seed", "abc", NULL},
        {"--seed", NULL},
        {"--listen", "nonsense", NULL},
        {"--max-body", "lots", NULL},
        {"--journal-size", "-5", NULL},
        {"--log-format", "xml", NULL},
        {"--log-level", "loud", NULL},
        {"--threads", "0", NULL},
        {"stray-argument", NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CU_ASSERT_EQUAL(mch_run(dir, bad[i], 10000, &ex), 0);
        if (ex.code != 2) {
            fprintf(stderr, "  mockcloud %s %s: exit %d, want 2\n", bad[i][0],
                    bad[i][1] ? bad[i][1] : "", ex.code);
            CU_FAIL("bad flag did not exit 2");
        }
        /* Usage, naming the offending argument. */
        CU_ASSERT_PTR_NOT_NULL(strstr(ex.err, "--listen"));
        if (!strstr(ex.err, bad[i][0])) {
            fprintf(stderr, "  stderr does not name %s\n", bad[i][0]);
            mch_print_tail("stderr", ex.err, 1500);
            CU_FAIL("bad flag not named");
        }
    }
}

static void test_json_logs(void)
{
    const char *const args[] = {"--log-format", "json", "--log-level", "debug", NULL};
    mch_server *s = start(MCH_FAST_CLOUD, args);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    mch_resp *r = mch_get(s, "/v1/instances");
    CU_ASSERT(mch_expect(r, 200));
    CU_ASSERT_EQUAL_FATAL(mch_stop(s), 0);
    char *err = mch_keep_ptr(mch_read_file(s->err_path, NULL), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(err);
    int lines = 0;
    for (char *line = err, *eol; line && *line; line = eol ? eol + 1 : NULL) {
        eol = strchr(line, '\n');
        if (eol) *eol = '\0';
        cJSON *j = cJSON_Parse(line);
        if (!j || !mch_str(j, "level") || !mch_str(j, "msg")) {
            fprintf(stderr, "  not a JSON log line: %s\n", line);
            CU_FAIL("--log-format json wrote a non-JSON line");
        }
        cJSON_Delete(j);
        lines++;
    }
    CU_ASSERT(lines >= 2);
}

static void test_config_errors(void)
{
    const char *dir = mch_tmpdir();
    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    static const struct {
        const char *yaml;
        const char *where; /* ":line:" expected after the path, or NULL: any line:col */
        const char *names; /* expected in the message, or NULL */
    } cases[] = {
        {"seed: 7\ncloud:\n  zones: [hk-1a, hk-1b\nfaults: []\n", NULL, NULL},
        {"seed: 7\ncloud: {}\nbogus: 1\n", ":3:1", "bogus"},
        {"cloud:\n  timings:\n    create: forever\n", ":3:", "create"},
        {"faults:\n  - {id: a, effect: {type: reset}}\n  - {id: b, effect: {type: error, status: "
         "abc}}\n",
         ":3:", "status"},
        {"tokens:\n  - {token: t1, access: sudo}\n", ":2:", "access"},
        {"seed: [1, 2]\n", ":1:", "seed"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[32], path[MCH_PATH_LEN];
        snprintf(name, sizeof name, "bad%zu.yaml", i);
        CU_ASSERT_EQUAL_FATAL(mch_write_file(dir, name, cases[i].yaml, path), 0);
        const char *const args[] = {"--config", path, "--listen", "127.0.0.1:0", NULL};
        mch_exit ex;
        CU_ASSERT_EQUAL(mch_run(dir, args, 10000, &ex), 0);
        bool ok = ex.code != 0 && ex.code < 128;
        /* "file:line:col" */
        const char *at = strstr(ex.err, path);
        int line = 0, col = 0;
        ok = ok && at && sscanf(at + strlen(path), ":%d:%d", &line, &col) == 2 && line > 0 &&
             col > 0;
        if (ok && cases[i].where)
            ok = strncmp(at + strlen(path), cases[i].where, strlen(cases[i].where)) == 0;
        if (ok && cases[i].names) ok = strstr(ex.err, cases[i].names) != NULL;
        if (!ok) {
            fprintf(stderr, "  config case %zu (exit %d) wanted %s%s naming %s:\n%s", i, ex.code,
                    path, cases[i].where ? cases[i].where : ":L:C",
                    cases[i].names ? cases[i].names : "-", cases[i].yaml);
            mch_print_tail("stderr", ex.err, 1500);
            CU_FAIL("config error not reported as file:line:col");
        }
    }
    /* A missing config file is named too. */
    char missing[MCH_PATH_LEN];
    snprintf(missing, sizeof missing, "%s/absent.yaml", dir);
    const char *const args[] = {"--config", missing, "--listen", "127.0.0.1:0", NULL};
    mch_exit ex;
    CU_ASSERT_EQUAL(mch_run(dir, args, 10000, &ex), 0);
    CU_ASSERT(ex.code != 0 && ex.code < 128);
    CU_ASSERT_PTR_NOT_NULL(strstr(ex.err, missing));
}

static void test_config_applies(void)
{
    const char *cfg = MCH_FAST_CLOUD "  capacity: {hk-1a: 2}\n"
                                     "faults:\n"
                                     "  - id: cfg-503\n"
                                     "    match: {op: ListSnapshots}\n"
                                     "    effect: {type: error, status: 503, code: Maintenance,"
                                     " message: planned}\n"
                                     "tokens:\n"
                                     "  - {token: cfg-rw, access: read-write}\n"
                                     "  - {token: cfg-ro, access: read-only}\n";
    mch_server *s = start(cfg, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    s->token = "cfg-rw";

    mch_resp *r = mch_get(s, "/_mock/faults");
    CU_ASSERT(mch_expect(r, 200));
    CU_ASSERT(mch_streq(mch_str(cJSON_GetArrayItem(mch_at(r->json, "items"), 0), "id"), "cfg-503"));
    r = mch_get(s, "/v1/snapshots");
    CU_ASSERT(mch_is_error(r, 503, "Maintenance"));
    CU_ASSERT(mch_streq(mch_str(r->json, "error.message"), "planned"));
    r = mch_get(s, "/v1/instances");
    CU_ASSERT(mch_expect(r, 200));

    char id[64];
    CU_ASSERT_EQUAL(mch_create(s, "q1", "hk-1a", NULL, NULL, id), 202);
    CU_ASSERT_EQUAL(mch_create(s, "q2", "hk-1a", NULL, NULL, id), 202);
    long st = mch_create(s, "q3", "hk-1a", NULL, NULL, id);
    CU_ASSERT(mch_is_error(&s->last, st, "InsufficientCapacity"));
    CU_ASSERT(st == 409 || st == 507);
    CU_ASSERT_EQUAL(mch_create(s, "q3", "hk-1b", NULL, NULL, id), 202);

    r = mch_req(s, "POST", "/v1/instances", "{}", &(mch_opts){.token = "cfg-ro"});
    CU_ASSERT(mch_is_error(r, 403, "Forbidden"));
    r = mch_req(s, "GET", "/v1/instances", NULL, &(mch_opts){.token = ""});
    CU_ASSERT(mch_is_error(r, 401, "Unauthorized"));
    CU_ASSERT_EQUAL(mch_stop(s), 0);
}

static CU_TestInfo api_tests[] = {
    {"create: 202, Location, pending -> running", test_create_and_lifecycle},
    {"idempotency replay and 409", test_idempotency},
    {"list filters and pagination", test_list_filters_and_pagination},
    {"delete: deleting -> 404", test_delete},
    {"resize and disk shrink", test_resize},
    {"power actions", test_power_actions},
    {"snapshots", test_snapshots},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo auth_tests[] = {
    {"401/403, admin token, run-time tokens", test_auth},
    {"--tokens-file", test_tokens_file},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo control_tests[] = {
    {"timings, capacity, reset", test_timings_capacity_reset},
    {"bad input: error and no state change", test_bad_input_changes_nothing},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo cli_tests[] = {
    {"--help, --version, bad flags exit 2", test_help_and_bad_flags},
    {"--log-format json", test_json_logs},
    {"config errors name file:line:col", test_config_errors},
    {"config rules, capacity and tokens apply", test_config_applies},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"mockcloud api", NULL, NULL, NULL, mch_teardown, api_tests},
    {"mockcloud auth", NULL, NULL, NULL, mch_teardown, auth_tests},
    {"mockcloud control", NULL, NULL, NULL, mch_teardown, control_tests},
    {"mockcloud cli", NULL, NULL, NULL, mch_teardown, cli_tests},
    CU_SUITE_INFO_NULL,
};

CSL_TEST_MAIN(suites)
