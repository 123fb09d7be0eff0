/* test_cloud_client.c — the cloud client (lib/cloud.c) against the real
 * mockcloud binary: the instance lifecycle the operator drives, idempotent
 * creates and adoption by tag, snapshots, every fault class as the
 * reconciler will see it, the silent re-send policy, and the metrics.
 *
 * mockcloud runs with auth on (a read-write token "secret" and a read-only
 * "viewer") so tokens matter; the control API is driven through the shared
 * harness (mockcloud_harness.h). */
#include "../testutil.h"
#include "mockcloud_harness.h"

#include "csl/cloud.h"
#include "csl/metrics.h"

#define WAIT_MS 10000
#define TOKEN "secret"

static const char *const auth_args[] = {"--token", TOKEN, "--token", "viewer:ro",
                                        "--seed",  "7",   NULL};

static mch_server *start(void)
{
    mch_server *s = mch_new(NULL);
    if (!s) return NULL;
    if (mch_start_with_config(s, MCH_FAST_CLOUD, auth_args) != 0) return NULL;
    s->token = TOKEN;
    return s;
}

/* A client of s; clients live until the test frees them (a FATAL assert
 * leaks one, which the sanitizer run does not count as a failure of
 * mockcloud). */
static csl_cloud *client_of(const mch_server *s, long timeout_ms, csl_metrics *m)
{
    csl_cloud_options o = {.token = TOKEN, .timeout_ms = timeout_ms, .metrics = m};
    char err[256] = "";
    csl_cloud *c = csl_cloud_new(s->base, &o, err, sizeof err);
    if (!c) fprintf(stderr, "  csl_cloud_new(%s): %s\n", s->base, err);
    return c;
}

static void print_err(const char *what, const csl_cloud_error *e)
{
    char line[1024];
    fprintf(stderr, "  %s: %s [%s/%s]\n", what, csl_cloud_error_str(e, line, sizeof line),
            csl_cloud_code_name(e->code), csl_cloud_cause_name(e->cause));
}

/* code == want, printing the error when not. */
static bool is(csl_cloud_code got, csl_cloud_code want, const csl_cloud_error *e)
{
    if (got == want) return true;
    fprintf(stderr, "  expected %s, got %s\n", csl_cloud_code_name(want), csl_cloud_code_name(got));
    print_err("error", e);
    return false;
}

static csl_cloud_instance_spec spec_for(const char *name, const char *zone,
                                        const csl_cloud_kv *tags, size_t n_tags)
{
    return (csl_cloud_instance_spec){.name = name,
                                     .cpu = 2,
                                     .memory_mib = 4096,
                                     .disk_gib = 40,
                                     .image = "debian-12",
                                     .zone = zone,
                                     .network_type = "standard",
                                     .ip_count = 2,
                                     .tags = tags,
                                     .n_tags = n_tags};
}

/* Polls until the instance is in state want (and, when cpu > 0, has that
 * many cores), with a short back-off; 0 or -1. */
static int wait_instance(csl_cloud *c, const char *id, csl_instance_state want, int cpu,
                         csl_cloud_instance *out)
{
    int64_t end = mch_now_ms() + WAIT_MS;
    csl_cloud_error e;
    for (;;) {
        csl_cloud_instance in;
        csl_cloud_code code = csl_cloud_get_instance(c, id, &in, &e);
        if (code == CSL_CLOUD_OK && in.state == want && (cpu <= 0 || in.cpu == cpu)) {
            if (out)
                *out = in;
            else
                csl_cloud_instance_free(&in);
            return 0;
        }
        bool late = mch_now_ms() >= end;
        if (late) {
            fprintf(stderr, "  %s did not reach %s: last %s state=%s cpu=%d\n", id,
                    csl_instance_state_name(want), csl_cloud_code_name(code),
                    in.state_raw ? in.state_raw : "-", in.cpu);
            print_err("last", &e);
        }
        csl_cloud_instance_free(&in);
        if (late) return -1;
        mch_sleep_ms(20);
    }
}

static int wait_gone(csl_cloud *c, const char *id)
{
    int64_t end = mch_now_ms() + WAIT_MS;
    csl_cloud_error e;
    while (mch_now_ms() < end) {
        if (csl_cloud_get_instance(c, id, NULL, &e) == CSL_CLOUD_NOT_FOUND) return 0;
        mch_sleep_ms(20);
    }
    print_err("still there", &e);
    return -1;
}

static long journal_count(mch_server *s, const char *query)
{
    mch_resp *r = mch_get(s, "/_mock/journal/count?%s", query);
    if (!mch_expect(r, 200)) return -1;
    return (long)mch_num(r->json, "count", -1);
}

/* ================================================================ lifecycle */

static void test_lifecycle(void)
{
    mch_server *s = start();
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    csl_cloud *c = client_of(s, 0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    csl_cloud_error e;
    csl_cloud_kv tags[] = {{"cloudserver.dev/uid", "3f2a-uid"},
                           {"cloudserver.dev/name", "default/web-1"}};
    csl_cloud_instance_spec spec = spec_for("web-1", "hk-1a", tags, 2);

    /* Create → 202 pending → running with its addresses. */
    csl_cloud_instance in;
    CU_ASSERT_FATAL(is(csl_cloud_create_instance(c, &spec, "3f2a-uid", &in, &e), CSL_CLOUD_OK, &e));
    CU_ASSERT_EQUAL(e.status, 202);
    CU_ASSERT_EQUAL(strncmp(e.operation, "op-", 3), 0);
    CU_ASSERT_EQUAL(in.state, CSL_INSTANCE_PENDING);
    CU_ASSERT_STRING_EQUAL(csl_cloud_instance_tag(&in, "cloudserver.dev/uid"), "3f2a-uid");
    char id[64];
    snprintf(id, sizeof id, "%s", in.id);
    csl_cloud_instance_free(&in);
    CU_ASSERT_EQUAL_FATAL(wait_instance(c, id, CSL_INSTANCE_RUNNING, 0, &in), 0);
    CU_ASSERT_EQUAL(in.n_ip_addresses, 2);
    CU_ASSERT_EQUAL(in.ip_count, 2);
    CU_ASSERT(in.created_ms > 0 && in.updated_ms >= in.created_ms);
    csl_cloud_instance_free(&in);

    /* The same key and spec: a replay, the same instance. */
    CU_ASSERT(is(csl_cloud_create_instance(c, &spec, "3f2a-uid", &in, &e), CSL_CLOUD_OK, &e));
    CU_ASSERT_EQUAL(e.status, 200);
    CU_ASSERT_STRING_EQUAL(in.id, id);
    csl_cloud_instance_free(&in);
    /* The same key, another spec. */
    csl_cloud_instance_spec other = spec;
    other.cpu = 8;
    CU_ASSERT(
        is(csl_cloud_create_instance(c, &other, "3f2a-uid", &in, &e), CSL_CLOUD_CONFLICT, &e));
    CU_ASSERT_STRING_EQUAL(e.cloud_code, "IdempotencyMismatch");
    CU_ASSERT_EQUAL(e.status, 409);

    /* Adopt by uid tag. */
    csl_cloud_instance_list l;
    CU_ASSERT(is(csl_cloud_find_instances(c, "cloudserver.dev/uid", "3f2a-uid", &l, &e),
                 CSL_CLOUD_OK, &e));
    CU_ASSERT_EQUAL_FATAL(l.n, 1);
    CU_ASSERT_STRING_EQUAL(l.items[0].id, id);
    csl_cloud_instance_list_free(&l);
    CU_ASSERT(
        is(csl_cloud_find_instances(c, "cloudserver.dev/uid", "nobody", &l, &e), CSL_CLOUD_OK, &e));
    CU_ASSERT_EQUAL(l.n, 0);
    csl_cloud_instance_list_free(&l);

    /* Resize; the same size again changes nothing; a disk shrink is refused. */
    csl_cloud_resize rs = {.cpu = 4, .memory_mib = 8192};
    CU_ASSERT(is(csl_cloud_resize_instance(c, id, &rs, &in, &e), CSL_CLOUD_OK, &e));
    CU_ASSERT_EQUAL(e.status, 202);
    CU_ASSERT_EQUAL(in.state, CSL_INSTANCE_RESIZING);
    csl_cloud_instance_free(&in);
    CU_ASSERT_EQUAL_FATAL(wait_instance(c, id, CSL_INSTANCE_RUNNING, 4, &in), 0);
    CU_ASSERT_EQUAL(in.memory_mib, 8192);
    csl_cloud_instance_free(&in);
    CU_ASSERT(is(csl_cloud_resize_instance(c, id, &rs, NULL, &e), CSL_CLOUD_OK, &e));
    CU_ASSERT_EQUAL(e.status, 200);
    csl_cloud_resize shrink = {.disk_gib = 20};
    CU_ASSERT(is(csl_cloud_resize_instance(c, id, &shrink, NULL, &e), CSL_CLOUD_INVALID, &e));
    CU_ASSERT_STRING_EQUAL(e.cloud_code, "DiskShrinkNotAllowed");
    CU_ASSERT(e.message[0] != '\0');

    /* Tags: drop the ownership tag (as Retain does), add another; the
     * instance no longer shows up in a lookup by uid. */
    csl_cloud_kv untag[] = {{"cloudserver.dev/uid", NULL}, {"kept-by", "someone"}};
    CU_ASSERT(is(csl_cloud_update_tags(c, id, untag, 2, &in, &e), CSL_CLOUD_OK, &e));
    CU_ASSERT_PTR_NULL(csl_cloud_instance_tag(&in, "cloudserver.dev/uid"));
    CU_ASSERT_STRING_EQUAL(csl_cloud_instance_tag(&in, "kept-by"), "someone");
    csl_cloud_instance_free(&in);
    CU_ASSERT(is(csl_cloud_find_instances(c, "cloudserver.dev/uid", "3f2a-uid", &l, &e),
                 CSL_CLOUD_OK, &e));
    CU_ASSERT_EQUAL(l.n, 0);
    csl_cloud_instance_list_free(&l);
    csl_cloud_kv retag[] = {{"cloudserver.dev/uid", "3f2a-uid"}};
    CU_ASSERT(is(csl_cloud_update_tags(c, id, retag, 1, NULL, &e), CSL_CLOUD_OK, &e));

    /* Power: stop, a start of a running one is refused, start again. */
    CU_ASSERT(
        is(csl_cloud_instance_action(c, id, CSL_CLOUD_START, NULL, &e), CSL_CLOUD_CONFLICT, &e));
    CU_ASSERT_STRING_EQUAL(e.cloud_code, "InvalidState");
    CU_ASSERT(is(csl_cloud_instance_action(c, id, CSL_CLOUD_STOP, &in, &e), CSL_CLOUD_OK, &e));
    CU_ASSERT_EQUAL(in.state, CSL_INSTANCE_STOPPING);
    csl_cloud_instance_free(&in);
    CU_ASSERT_EQUAL(wait_instance(c, id, CSL_INSTANCE_STOPPED, 0, NULL), 0);
    CU_ASSERT(is(csl_cloud_instance_action(c, id, CSL_CLOUD_START, NULL, &e), CSL_CLOUD_OK, &e));
    CU_ASSERT_EQUAL(wait_instance(c, id, CSL_INSTANCE_RUNNING, 0, NULL), 0);
    CU_ASSERT(is(csl_cloud_instance_action(c, id, CSL_CLOUD_REBOOT, NULL, &e), CSL_CLOUD_OK, &e));
    CU_ASSERT_EQUAL(wait_instance(c, id, CSL_INSTANCE_RUNNING, 0, NULL), 0);

    /* Snapshots: create (keyed, replayed), list by instance, available,
     * delete, gone. */
    csl_cloud_snapshot snap;
    csl_cloud_kv stags[] = {{"cloudserver.dev/uid", "3f2a-uid"}};
    CU_ASSERT_FATAL(
        is(csl_cloud_create_snapshot(c, id, "nightly", stags, 1, "3f2a-uid-snap-1", &snap, &e),
           CSL_CLOUD_OK, &e));
    CU_ASSERT_EQUAL(e.status, 202);
    CU_ASSERT_EQUAL(snap.state, CSL_SNAPSHOT_CREATING);
    CU_ASSERT_STRING_EQUAL(snap.instance_id, id);
    CU_ASSERT_EQUAL(snap.size_gib, 40);
    char sid[64];
    snprintf(sid, sizeof sid, "%s", snap.id);
    csl_cloud_snapshot_free(&snap);
    CU_ASSERT(
        is(csl_cloud_create_snapshot(c, id, "nightly", stags, 1, "3f2a-uid-snap-1", &snap, &e),
           CSL_CLOUD_OK, &e));
    CU_ASSERT_EQUAL(e.status, 200);
    CU_ASSERT_STRING_EQUAL(snap.id, sid);
    csl_cloud_snapshot_free(&snap);
    /* An unkeyed one too (sent on a fresh connection). */
    CU_ASSERT(
        is(csl_cloud_create_snapshot(c, id, NULL, NULL, 0, NULL, NULL, &e), CSL_CLOUD_OK, &e));
    csl_cloud_snapshot_list sl;
    CU_ASSERT(is(csl_cloud_list_snapshots(c, id, &sl, &e), CSL_CLOUD_OK, &e));
    CU_ASSERT_EQUAL(sl.n, 2);
    CU_ASSERT(sl.n >= 1 && strcmp(sl.items[0].id, sid) == 0);
    csl_cloud_snapshot_list_free(&sl);
    CU_ASSERT(is(csl_cloud_list_snapshots(c, "i-nobody", &sl, &e), CSL_CLOUD_OK, &e));
    CU_ASSERT_EQUAL(sl.n, 0);
    csl_cloud_snapshot_list_free(&sl);
    int64_t end = mch_now_ms() + WAIT_MS;
    csl_snapshot_state st = CSL_SNAPSHOT_UNKNOWN;
    while (st != CSL_SNAPSHOT_AVAILABLE && mch_now_ms() < end) {
        if (csl_cloud_get_snapshot(c, sid, &snap, &e) == CSL_CLOUD_OK) st = snap.state;
        csl_cloud_snapshot_free(&snap);
        if (st != CSL_SNAPSHOT_AVAILABLE) mch_sleep_ms(20);
    }
    CU_ASSERT_EQUAL(st, CSL_SNAPSHOT_AVAILABLE);
    CU_ASSERT(is(csl_cloud_delete_snapshot(c, sid, &e), CSL_CLOUD_OK, &e));
    CU_ASSERT_EQUAL(e.status, 204);
    CU_ASSERT(is(csl_cloud_get_snapshot(c, sid, &snap, &e), CSL_CLOUD_NOT_FOUND, &e));
    CU_ASSERT(is(csl_cloud_delete_snapshot(c, sid, &e), CSL_CLOUD_NOT_FOUND, &e));

    /* Delete → deleting → NOT_FOUND; the replay of the create says deleted. */
    CU_ASSERT(is(csl_cloud_delete_instance(c, id, &e), CSL_CLOUD_OK, &e));
    CU_ASSERT_EQUAL(e.status, 202);
    CU_ASSERT_EQUAL(wait_gone(c, id), 0);
    CU_ASSERT(is(csl_cloud_get_instance(c, id, &in, &e), CSL_CLOUD_NOT_FOUND, &e));
    CU_ASSERT_STRING_EQUAL(e.cloud_code, "NotFound");
    CU_ASSERT(is(csl_cloud_delete_instance(c, id, &e), CSL_CLOUD_NOT_FOUND, &e));
    CU_ASSERT(is(csl_cloud_create_instance(c, &spec, "3f2a-uid", &in, &e), CSL_CLOUD_OK, &e));
    CU_ASSERT_EQUAL(e.status, 200);
    CU_ASSERT_EQUAL(in.state, CSL_INSTANCE_DELETED);
    csl_cloud_instance_free(&in);
    CU_ASSERT(is(csl_cloud_find_instances(c, "cloudserver.dev/uid", "3f2a-uid", &l, &e),
                 CSL_CLOUD_OK, &e));
    CU_ASSERT_EQUAL(l.n, 0);
    csl_cloud_instance_list_free(&l);

    /* Everything the client sent carried the key it should, and one
     * CreateInstance made an instance. */
    CU_ASSERT_EQUAL(journal_count(s, "op=CreateInstance&status=202"), 1);
    CU_ASSERT_EQUAL(journal_count(s, "op=CreateInstance&key=3f2a-uid"),
                    journal_count(s, "op=CreateInstance"));
    csl_cloud_free(c);
    CU_ASSERT_EQUAL(mch_stop(s), 0);
}

/* A tag filter across pages, in creation order, adopting one among many. */
static void test_list_pages_and_adopt(void)
{
    mch_server *s = start();
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    csl_cloud *c = client_of(s, 0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    csl_cloud_error e;
    char ids[9][64];
    for (int i = 0; i < 9; i++) {
        char name[32], uid[32];
        snprintf(name, sizeof name, "web-%d", i);
        snprintf(uid, sizeof uid, "uid-%d", i);
        csl_cloud_kv tags[] = {{"cloudserver.dev/uid", uid}, {"batch", i < 7 ? "b" : "other"}};
        csl_cloud_instance_spec spec = spec_for(name, i % 2 ? "hk-1a" : "hk-1b", tags, 2);
        csl_cloud_instance in;
        CU_ASSERT_FATAL(is(csl_cloud_create_instance(c, &spec, uid, &in, &e), CSL_CLOUD_OK, &e));
        snprintf(ids[i], sizeof ids[i], "%s", in.id);
        csl_cloud_instance_free(&in);
    }
    CU_ASSERT_EQUAL(mch_send(s, "DELETE", NULL, "/_mock/journal")->status, 204);
    csl_cloud_kv batch[] = {{"batch", "b"}};
    csl_cloud_list_filter f = {.tags = batch, .n_tags = 1, .page_size = 3};
    csl_cloud_instance_list l;
    CU_ASSERT_FATAL(is(csl_cloud_list_instances(c, &f, &l, &e), CSL_CLOUD_OK, &e));
    CU_ASSERT_EQUAL_FATAL(l.n, 7);
    for (int i = 0; i < 7; i++) CU_ASSERT_STRING_EQUAL(l.items[i].id, ids[i]);
    csl_cloud_instance_list_free(&l);
    CU_ASSERT_EQUAL(journal_count(s, "op=ListInstances"), 3);

    /* Zone and tag together. */
    f = (csl_cloud_list_filter){.tags = batch, .n_tags = 1, .zone = "hk-1a"};
    CU_ASSERT(is(csl_cloud_list_instances(c, &f, &l, &e), CSL_CLOUD_OK, &e));
    CU_ASSERT_EQUAL(l.n, 3); /* 1, 3, 5 */
    csl_cloud_instance_list_free(&l);
    /* A zone the cloud does not know. */
    f = (csl_cloud_list_filter){.zone = "mars-1a"};
    CU_ASSERT(is(csl_cloud_list_instances(c, &f, &l, &e), CSL_CLOUD_INVALID, &e));
    CU_ASSERT_STRING_EQUAL(e.cloud_code, "InvalidZone");

    CU_ASSERT(
        is(csl_cloud_find_instances(c, "cloudserver.dev/uid", "uid-5", &l, &e), CSL_CLOUD_OK, &e));
    CU_ASSERT_EQUAL_FATAL(l.n, 1);
    CU_ASSERT_STRING_EQUAL(l.items[0].id, ids[5]);
    CU_ASSERT_STRING_EQUAL(l.items[0].name, "web-5");
    csl_cloud_instance_list_free(&l);
    csl_cloud_free(c);
    CU_ASSERT_EQUAL(mch_stop(s), 0);
}

/* ================================================================ faults */

static void test_fault_5xx_reset_empty_malformed(void)
{
    mch_server *s = start();
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    csl_cloud *c = client_of(s, 0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    csl_cloud_error e;
    csl_cloud_instance_list l;

    CU_ASSERT_EQUAL_FATAL(mch_add_rule(s, "{\"id\":\"e503\",\"match\":{\"op\":\"ListInstances\"},"
                                          "\"effect\":{\"type\":\"error\",\"status\":503},"
                                          "\"count\":1}"),
                          0);
    CU_ASSERT(is(csl_cloud_list_instances(c, NULL, &l, &e), CSL_CLOUD_RETRYABLE, &e));
    CU_ASSERT_EQUAL(e.cause, CSL_CLOUD_CAUSE_HTTP);
    CU_ASSERT_EQUAL(e.status, 503);
    CU_ASSERT_STRING_EQUAL(e.cloud_code, "ServiceUnavailable");
    CU_ASSERT(is(csl_cloud_list_instances(c, NULL, &l, &e), CSL_CLOUD_OK, &e));
    csl_cloud_instance_list_free(&l);

    /* A reset on every try: libcurl's one silent re-send is reset too. */
    CU_ASSERT_EQUAL_FATAL(mch_add_rule(s, "{\"id\":\"rst\",\"match\":{\"op\":\"ListInstances\"},"
                                          "\"effect\":{\"type\":\"reset\"}}"),
                          0);
    CU_ASSERT(is(csl_cloud_list_instances(c, NULL, &l, &e), CSL_CLOUD_RETRYABLE, &e));
    CU_ASSERT_EQUAL(e.cause, CSL_CLOUD_CAUSE_TRANSPORT);
    CU_ASSERT_EQUAL(e.status, 0);
    CU_ASSERT(e.curl_error[0] != '\0');
    CU_ASSERT_EQUAL(mch_del(s, "/_mock/faults/rst")->status, 204);

    CU_ASSERT_EQUAL_FATAL(mch_add_rule(s, "{\"id\":\"empty\",\"match\":{\"op\":\"ListSnapshots\"},"
                                          "\"effect\":{\"type\":\"empty\"}}"),
                          0);
    csl_cloud_snapshot_list sl;
    CU_ASSERT(is(csl_cloud_list_snapshots(c, NULL, &sl, &e), CSL_CLOUD_RETRYABLE, &e));
    CU_ASSERT_EQUAL(e.cause, CSL_CLOUD_CAUSE_TRANSPORT);
    CU_ASSERT_EQUAL(mch_del(s, "/_mock/faults/empty")->status, 204);

    /* Malformed, request phase: 200 with a cut body, nothing happened. */
    CU_ASSERT_EQUAL_FATAL(mch_add_rule(s, "{\"id\":\"bad\",\"match\":{\"op\":\"GetInstance\"},"
                                          "\"effect\":{\"type\":\"malformed\"},\"count\":1}"),
                          0);
    csl_cloud_instance in;
    CU_ASSERT(is(csl_cloud_get_instance(c, "i-000000000000", &in, &e), CSL_CLOUD_RETRYABLE, &e));
    CU_ASSERT_EQUAL(e.cause, CSL_CLOUD_CAUSE_DECODE);
    CU_ASSERT_EQUAL(e.status, 200);
    CU_ASSERT_PTR_NULL(in.id);
    /* Malformed, response phase, on a delete: the cut 202 is an error even
     * though the delete happened; a retry then finds it deleting or gone. */
    csl_cloud_kv tags[] = {{"u", "m"}};
    csl_cloud_instance_spec spec = spec_for("m", "hk-1a", tags, 1);
    CU_ASSERT_FATAL(is(csl_cloud_create_instance(c, &spec, "m-key", &in, &e), CSL_CLOUD_OK, &e));
    char id[64];
    snprintf(id, sizeof id, "%s", in.id);
    csl_cloud_instance_free(&in);
    CU_ASSERT_EQUAL_FATAL(mch_add_rule(s, "{\"id\":\"cut\",\"match\":{\"op\":\"DeleteInstance\"},"
                                          "\"effect\":{\"type\":\"malformed\"},"
                                          "\"phase\":\"response\",\"count\":1}"),
                          0);
    CU_ASSERT(is(csl_cloud_delete_instance(c, id, &e), CSL_CLOUD_RETRYABLE, &e));
    CU_ASSERT_EQUAL(e.cause, CSL_CLOUD_CAUSE_DECODE);
    CU_ASSERT_EQUAL(e.status, 202);
    csl_cloud_code again = csl_cloud_delete_instance(c, id, &e);
    CU_ASSERT(again == CSL_CLOUD_OK || again == CSL_CLOUD_NOT_FOUND);
    CU_ASSERT_EQUAL(wait_gone(c, id), 0);
    csl_cloud_free(c);
    CU_ASSERT_EQUAL(mch_stop(s), 0);
}

static void test_fault_hang_timeout(void)
{
    mch_server *s = start();
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    csl_cloud *c = client_of(s, 500, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL_FATAL(mch_add_rule(s, "{\"id\":\"hang\",\"match\":{\"op\":\"GetInstance\"},"
                                          "\"effect\":{\"type\":\"hang\"}}"),
                          0);
    csl_cloud_error e;
    int64_t t0 = mch_now_ms();
    CU_ASSERT(is(csl_cloud_get_instance(c, "i-000000000001", NULL, &e), CSL_CLOUD_RETRYABLE, &e));
    int64_t took = mch_now_ms() - t0;
    CU_ASSERT_EQUAL(e.cause, CSL_CLOUD_CAUSE_TIMEOUT);
    CU_ASSERT_EQUAL(e.status, 0);
    CU_ASSERT(took >= 450 && took < 8000);
    /* Other calls go on meanwhile. */
    csl_cloud_instance_list l;
    CU_ASSERT(is(csl_cloud_list_instances(c, NULL, &l, &e), CSL_CLOUD_OK, &e));
    csl_cloud_instance_list_free(&l);
    csl_cloud_free(c);
    CU_ASSERT_EQUAL(mch_stop(s), 0);
}

static void test_fault_throttle_and_auth(void)
{
    mch_server *s = start();
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    csl_cloud *c = client_of(s, 0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    csl_cloud_error e;
    csl_cloud_instance_list l;

    CU_ASSERT_EQUAL_FATAL(mch_add_rule(s, "{\"match\":{\"op\":\"ListInstances\"},"
                                          "\"effect\":{\"type\":\"rateLimit\",\"retryAfter\":"
                                          "\"2500ms\"},\"count\":1}"),
                          0);
    CU_ASSERT(is(csl_cloud_list_instances(c, NULL, &l, &e), CSL_CLOUD_THROTTLED, &e));
    CU_ASSERT_EQUAL(e.status, 429);
    CU_ASSERT_EQUAL(e.retry_after_s, 3); /* whole seconds, rounded up */

    CU_ASSERT_EQUAL_FATAL(mch_add_rule(s, "{\"match\":{\"op\":\"ListInstances\"},"
                                          "\"effect\":{\"type\":\"unauthorized\"},\"count\":1}"),
                          0);
    CU_ASSERT(is(csl_cloud_list_instances(c, NULL, &l, &e), CSL_CLOUD_AUTH, &e));
    CU_ASSERT_EQUAL(e.status, 401);
    CU_ASSERT_EQUAL_FATAL(mch_add_rule(s, "{\"match\":{\"op\":\"ListInstances\"},"
                                          "\"effect\":{\"type\":\"forbidden\"},\"count\":1}"),
                          0);
    CU_ASSERT(is(csl_cloud_list_instances(c, NULL, &l, &e), CSL_CLOUD_AUTH, &e));
    CU_ASSERT_EQUAL(e.status, 403);
    CU_ASSERT(is(csl_cloud_list_instances(c, NULL, &l, &e), CSL_CLOUD_OK, &e));
    csl_cloud_instance_list_free(&l);

    /* Real auth: a wrong token, then the right one again without a new
     * client (the operator re-reading its Secret). */
    CU_ASSERT_EQUAL(csl_cloud_set_token(c, "wrong"), 0);
    CU_ASSERT(is(csl_cloud_list_instances(c, NULL, &l, &e), CSL_CLOUD_AUTH, &e));
    CU_ASSERT_EQUAL(e.status, 401);
    CU_ASSERT_STRING_EQUAL(e.cloud_code, "Unauthorized");
    CU_ASSERT_EQUAL(csl_cloud_set_token(c, NULL), 0);
    CU_ASSERT(is(csl_cloud_list_instances(c, NULL, &l, &e), CSL_CLOUD_AUTH, &e));
    CU_ASSERT_EQUAL(csl_cloud_set_token(c, TOKEN), 0);
    CU_ASSERT(is(csl_cloud_list_instances(c, NULL, &l, &e), CSL_CLOUD_OK, &e));
    csl_cloud_instance_list_free(&l);
    /* A read-only token may read, not write. */
    CU_ASSERT_EQUAL(csl_cloud_set_token(c, "viewer"), 0);
    CU_ASSERT(is(csl_cloud_list_instances(c, NULL, &l, &e), CSL_CLOUD_OK, &e));
    csl_cloud_instance_list_free(&l);
    csl_cloud_instance_spec spec = spec_for("ro", "hk-1a", NULL, 0);
    CU_ASSERT(is(csl_cloud_create_instance(c, &spec, "ro-key", NULL, &e), CSL_CLOUD_AUTH, &e));
    CU_ASSERT_EQUAL(e.status, 403);
    CU_ASSERT_STRING_EQUAL(e.cloud_code, "Forbidden");
    csl_cloud_free(c);
    CU_ASSERT_EQUAL(mch_stop(s), 0);
}

static void test_invalid_and_capacity(void)
{
    mch_server *s = start();
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    csl_cloud *c = client_of(s, 0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    csl_cloud_error e;
    csl_cloud_instance_spec spec = spec_for("x", "mars-1a", NULL, 0);
    CU_ASSERT(is(csl_cloud_create_instance(c, &spec, "k1", NULL, &e), CSL_CLOUD_INVALID, &e));
    CU_ASSERT_STRING_EQUAL(e.cloud_code, "InvalidZone");
    CU_ASSERT_PTR_NOT_NULL(strstr(e.message, "mars-1a"));
    spec = spec_for("x", "hk-1a", NULL, 0);
    spec.image = "windows-95";
    CU_ASSERT(is(csl_cloud_create_instance(c, &spec, "k1", NULL, &e), CSL_CLOUD_INVALID, &e));
    CU_ASSERT_STRING_EQUAL(e.cloud_code, "InvalidImage");
    spec = spec_for("x", "hk-1a", NULL, 0);
    spec.cpu = 999;
    CU_ASSERT(is(csl_cloud_create_instance(c, &spec, "k1", NULL, &e), CSL_CLOUD_INVALID, &e));
    CU_ASSERT_STRING_EQUAL(e.cloud_code, "InvalidRequest");
    CU_ASSERT_PTR_NOT_NULL(strstr(e.message, "cpu"));

    mch_resp *r = mch_send(s, "PUT", "{\"zones\":{\"hk-1b\":1}}", "/_mock/capacity");
    CU_ASSERT_FATAL(mch_expect(r, 200));
    spec = spec_for("c1", "hk-1b", NULL, 0);
    CU_ASSERT(is(csl_cloud_create_instance(c, &spec, "cap-1", NULL, &e), CSL_CLOUD_OK, &e));
    spec.name = "c2";
    CU_ASSERT(is(csl_cloud_create_instance(c, &spec, "cap-2", NULL, &e), CSL_CLOUD_CAPACITY, &e));
    CU_ASSERT_STRING_EQUAL(e.cloud_code, "InsufficientCapacity");
    CU_ASSERT_EQUAL(e.status, 409);
    /* A refusal recorded nothing: once there is room, the same key works. */
    r = mch_send(s, "PUT", "{\"zones\":{\"hk-1b\":null}}", "/_mock/capacity");
    CU_ASSERT(mch_expect(r, 200));
    CU_ASSERT(is(csl_cloud_create_instance(c, &spec, "cap-2", NULL, &e), CSL_CLOUD_OK, &e));
    CU_ASSERT_EQUAL(e.status, 202);
    csl_cloud_free(c);
    CU_ASSERT_EQUAL(mch_stop(s), 0);
}

static void test_server_gone(void)
{
    mch_server *s = start();
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    csl_cloud *c = client_of(s, 2000, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    csl_cloud_error e;
    CU_ASSERT(is(csl_cloud_list_instances(c, NULL, NULL, &e), CSL_CLOUD_OK, &e));
    CU_ASSERT_EQUAL(mch_stop(s), 0);
    /* The kept connection is dead and nothing listens: refused. */
    CU_ASSERT(is(csl_cloud_list_instances(c, NULL, NULL, &e), CSL_CLOUD_RETRYABLE, &e));
    CU_ASSERT(e.cause == CSL_CLOUD_CAUSE_CONNECT || e.cause == CSL_CLOUD_CAUSE_TRANSPORT);
    CU_ASSERT(is(csl_cloud_list_instances(c, NULL, NULL, &e), CSL_CLOUD_RETRYABLE, &e));
    CU_ASSERT_EQUAL(e.cause, CSL_CLOUD_CAUSE_CONNECT);
    csl_cloud_free(c);
}

/* ================================================================ re-sends */

/* A reset, once, on a power action: the client sends actions on a fresh
 * connection, so libcurl does not re-send and the caller sees the reset. A
 * reset, once, after a keyed create happened: whatever libcurl does, the
 * caller ends with one instance. */
static void test_resend_policy(void)
{
    mch_server *s = start();
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    csl_cloud *c = client_of(s, 0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    csl_cloud_error e;
    csl_cloud_kv tags[] = {{"cloudserver.dev/uid", "r-uid"}};
    csl_cloud_instance_spec spec = spec_for("r", "hk-1a", tags, 1);
    csl_cloud_instance in;
    CU_ASSERT_FATAL(is(csl_cloud_create_instance(c, &spec, "r-uid", &in, &e), CSL_CLOUD_OK, &e));
    char id[64];
    snprintf(id, sizeof id, "%s", in.id);
    csl_cloud_instance_free(&in);
    CU_ASSERT_EQUAL_FATAL(wait_instance(c, id, CSL_INSTANCE_RUNNING, 0, NULL), 0);

    CU_ASSERT_EQUAL_FATAL(mch_add_rule(s, "{\"match\":{\"op\":\"InstanceAction\"},"
                                          "\"effect\":{\"type\":\"reset\"},\"count\":1}"),
                          0);
    CU_ASSERT(
        is(csl_cloud_instance_action(c, id, CSL_CLOUD_STOP, NULL, &e), CSL_CLOUD_RETRYABLE, &e));
    CU_ASSERT_EQUAL(e.cause, CSL_CLOUD_CAUSE_TRANSPORT);
    CU_ASSERT_EQUAL(journal_count(s, "op=InstanceAction"), 1);
    CU_ASSERT_EQUAL(wait_instance(c, id, CSL_INSTANCE_RUNNING, 0, NULL), 0);

    /* Response phase: the create happens, its reply is lost. */
    CU_ASSERT_EQUAL_FATAL(mch_add_rule(s, "{\"match\":{\"op\":\"CreateInstance\"},"
                                          "\"effect\":{\"type\":\"reset\"},"
                                          "\"phase\":\"response\",\"count\":1}"),
                          0);
    csl_cloud_kv tags2[] = {{"cloudserver.dev/uid", "r2-uid"}};
    csl_cloud_instance_spec spec2 = spec_for("r2", "hk-1a", tags2, 1);
    csl_cloud_code code = csl_cloud_create_instance(c, &spec2, "r2-uid", NULL, &e);
    CU_ASSERT(code == CSL_CLOUD_OK || code == CSL_CLOUD_RETRYABLE);
    if (code == CSL_CLOUD_OK) CU_ASSERT_EQUAL(e.status, 200); /* re-sent, replayed */
    /* What a reconciler does next: adopt by tag, else create again. */
    csl_cloud_instance_list l;
    CU_ASSERT(
        is(csl_cloud_find_instances(c, "cloudserver.dev/uid", "r2-uid", &l, &e), CSL_CLOUD_OK, &e));
    CU_ASSERT_EQUAL(l.n, 1);
    csl_cloud_instance_list_free(&l);
    CU_ASSERT(is(csl_cloud_create_instance(c, &spec2, "r2-uid", NULL, &e), CSL_CLOUD_OK, &e));
    CU_ASSERT_EQUAL(e.status, 200);
    /* r2's 202 was replaced by the reset (journaled as status 0); every
     * other r2 request was a replay. */
    CU_ASSERT_EQUAL(journal_count(s, "op=CreateInstance&status=202"), 1);
    CU_ASSERT_EQUAL(journal_count(s, "op=CreateInstance&key=r2-uid&fault=reset"), 1);
    CU_ASSERT_EQUAL(journal_count(s, "op=CreateInstance&key=r2-uid&status=200"),
                    code == CSL_CLOUD_OK ? 2 : 1);
    csl_cloud_free(c);
    CU_ASSERT_EQUAL(mch_stop(s), 0);
}

/* ================================================================ metrics */

static void test_metrics_counted(void)
{
    mch_server *s = start();
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    csl_metrics *reg = csl_metrics_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(reg);
    csl_cloud *c = client_of(s, 0, reg);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    csl_cloud_error e;
    csl_cloud_instance_spec spec = spec_for("m", "hk-1a", NULL, 0);
    CU_ASSERT(is(csl_cloud_create_instance(c, &spec, "m-1", NULL, &e), CSL_CLOUD_OK, &e));
    CU_ASSERT(is(csl_cloud_create_instance(c, &spec, "m-1", NULL, &e), CSL_CLOUD_OK, &e));
    for (int i = 0; i < 4; i++)
        CU_ASSERT(is(csl_cloud_get_instance(c, "i-nope", NULL, &e), CSL_CLOUD_NOT_FOUND, &e));
    CU_ASSERT_EQUAL_FATAL(mch_add_rule(s, "{\"match\":{\"op\":\"ListInstances\"},"
                                          "\"effect\":{\"type\":\"reset\"},\"count\":2}"),
                          0);
    CU_ASSERT(is(csl_cloud_list_instances(c, NULL, NULL, &e), CSL_CLOUD_RETRYABLE, &e));

    csl_metric *req = csl_metrics_counter(reg, "cloudserver_cloud_api_requests_total", "",
                                          CSL_LABELS("op", "code"));
    CU_ASSERT_EQUAL(csl_metric_value(req, CSL_LABELS("CreateInstance", "202")), 1);
    CU_ASSERT_EQUAL(csl_metric_value(req, CSL_LABELS("CreateInstance", "200")), 1);
    CU_ASSERT_EQUAL(csl_metric_value(req, CSL_LABELS("GetInstance", "404")), 4);
    CU_ASSERT_EQUAL(csl_metric_value(req, CSL_LABELS("ListInstances", "error")), 1);
    /* The client's count of answered requests matches mockcloud's journal. */
    CU_ASSERT_EQUAL(journal_count(s, "op=GetInstance&status=404"), 4);
    CU_ASSERT_EQUAL(journal_count(s, "op=CreateInstance"), 2);
    csl_buf out = CSL_BUF_INIT;
    CU_ASSERT(csl_metrics_render(reg, &out));
    CU_ASSERT_PTR_NOT_NULL(strstr(csl_buf_str(&out),
                                  "cloudserver_cloud_api_request_duration_seconds_count{op="
                                  "\"GetInstance\"} 4"));
    CU_ASSERT_PTR_NOT_NULL(strstr(csl_buf_str(&out), "cloudserver_cloud_api_requests_total{op="
                                                     "\"ListInstances\",code=\"error\"} 1"));
    csl_buf_free(&out);
    csl_cloud_free(c);
    csl_metrics_free(reg);
    CU_ASSERT_EQUAL(mch_stop(s), 0);
}

static CU_TestInfo api_tests[] = {
    {"lifecycle: create, replay, adopt, resize, power, snapshots, delete", test_lifecycle},
    {"list pages, filters, adopt among many", test_list_pages_and_adopt},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo fault_tests[] = {
    {"503, reset, empty, malformed", test_fault_5xx_reset_empty_malformed},
    {"hang times the client out", test_fault_hang_timeout},
    {"429 Retry-After, 401, 403, token change", test_fault_throttle_and_auth},
    {"InvalidZone, InvalidImage, capacity", test_invalid_and_capacity},
    {"server gone", test_server_gone},
    {"silent re-send policy", test_resend_policy},
    {"metrics", test_metrics_counted},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"cloud client api", NULL, NULL, NULL, mch_teardown, api_tests},
    {"cloud client faults", NULL, NULL, NULL, mch_teardown, fault_tests},
    CU_SUITE_INFO_NULL,
};

CSL_TEST_MAIN(suites)
