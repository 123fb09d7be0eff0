/* test_runner_invariants.c — the monitor's pure decisions (monitor_inv.c):
 * each invariant passing and failing on hand-built snapshots with its exact
 * message, the fault-window and recovery bookkeeping, create-to-Ready pairs
 * on a fake clock, counters across restarts, and Warning Event counts. */
#include "../testutil.h"

#include <stdlib.h>
#include <string.h>

#include "../../scenarios/runner/monitor_inv.h"

#define S 1000000000LL /* one second in ns */

/* Parses JSON written with single quotes (for readability). */
static cJSON *J(const char *text)
{
    char *t = strdup(text);
    for (char *p = t; *p; p++)
        if (*p == '\'') *p = '"';
    cJSON *j = cJSON_Parse(t);
    free(t);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    return j;
}

/* A CloudServer: name, uid, generation, observedGeneration, Ready, instance. */
static cJSON *cs(const char *name, const char *uid, int gen, int obs, bool ready, const char *iid)
{
    char buf[2048];
    snprintf(buf, sizeof buf,
             "{'metadata':{'name':'%s','namespace':'ns1','uid':'%s','generation':%d},"
             "'spec':{'cpu':2,'memory':'4Gi','disk':'40Gi','image':'debian-12','zone':'hk-1a'},"
             "'status':{'observedGeneration':%d,'instanceID':'%s','zone':'hk-1a',"
             "'conditions':[{'type':'Synced','status':'True'},{'type':'Ready','status':'%s'}]}}",
             name, uid, gen, obs, iid, ready ? "True" : "False");
    return J(buf);
}

/* An instance as /_mock/state lists it. */
static cJSON *inst(const char *id, const char *state, const char *uid, const char *name_tag)
{
    char buf[1024], tags[512] = "{}";
    if (uid && name_tag)
        snprintf(tags, sizeof tags, "{'cloudserver.dev/uid':'%s','cloudserver.dev/name':'%s'}", uid,
                 name_tag);
    else if (uid)
        snprintf(tags, sizeof tags, "{'cloudserver.dev/uid':'%s'}", uid);
    snprintf(buf, sizeof buf,
             "{'id':'%s','state':'%s','cpu':2,'memoryMiB':4096,'diskGiB':40,'image':'debian-12',"
             "'zone':'hk-1a','tags':%s}",
             id, state, tags);
    return J(buf);
}

static cJSON *arr(cJSON *a, cJSON *b, cJSON *c)
{
    cJSON *x = cJSON_CreateArray();
    if (a) cJSON_AddItemToArray(x, a);
    if (b) cJSON_AddItemToArray(x, b);
    if (c) cJSON_AddItemToArray(x, c);
    return x;
}

/* ---------------------------------------------------------------- basics */

static void test_viols_summary(void)
{
    srm_viols v = {0};
    char *s = srm_viols_summary(&v, 3);
    CU_ASSERT_STRING_EQUAL(s, "");
    free(s);
    CU_ASSERT_EQUAL(srm_viols_add(&v, "k1", "first %d", 1), 0);
    CU_ASSERT_EQUAL(srm_viols_add(&v, NULL, "second"), 0);
    CU_ASSERT_EQUAL(srm_viols_add(&v, "k3", "third"), 0);
    s = srm_viols_summary(&v, 2);
    CU_ASSERT_STRING_EQUAL(s, "first 1; second (and 1 more)");
    free(s);
    s = srm_viols_summary(&v, 5);
    CU_ASSERT_STRING_EQUAL(s, "first 1; second; third");
    free(s);
    CU_ASSERT_TRUE(srm_viols_has_key(&v, "k3"));
    CU_ASSERT_FALSE(srm_viols_has_key(&v, "k2"));
    CU_ASSERT_FALSE(srm_viols_has_key(&v, NULL));
    srm_viols_free(&v);
    CU_ASSERT_EQUAL(v.n, 0);
}

static void test_live_states(void)
{
    const char *live[] = {"pending", "running",  "resizing", "stopping",
                          "stopped", "starting", "rebooting"};
    for (size_t i = 0; i < sizeof live / sizeof live[0]; i++)
        CU_ASSERT_TRUE(srm_instance_live(live[i]));
    CU_ASSERT_FALSE(srm_instance_live("crashed"));
    CU_ASSERT_FALSE(srm_instance_live("deleting"));
    CU_ASSERT_FALSE(srm_instance_live("deleted"));
    CU_ASSERT_FALSE(srm_instance_live(""));
    CU_ASSERT_FALSE(srm_instance_live(NULL));
}

static void test_objects_table(void)
{
    srm_objects t = {0};
    cJSON *a = cs("web-0", "u0", 1, 1, true, "i-0");
    cJSON *b = cs("web-1", "u1", 2, 1, false, "");
    CU_ASSERT_PTR_NOT_NULL(srm_objects_observe(&t, a));
    srm_object *o = srm_objects_observe(&t, b);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_PTR_NULL(o->instance_id); /* "" is no instance */
    CU_ASSERT_EQUAL(o->generation, 2);
    CU_ASSERT_EQUAL(o->observed_gen, 1);
    int n, r;
    srm_objects_counts(&t, &n, &r);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_EQUAL(r, 1);

    /* failoverCount: the largest seen is kept */
    cJSON_AddNumberToObject(cJSON_GetObjectItem(a, "status"), "failoverCount", 2);
    srm_objects_observe(&t, a);
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(a, "status"), "failoverCount",
                              cJSON_CreateNumber(1));
    o = srm_objects_observe(&t, a);
    CU_ASSERT_EQUAL(o->failover_max, 2);
    CU_ASSERT_STRING_EQUAL(o->instance_id, "i-0");

    srm_objects_gone(&t, "u0");
    srm_objects_gone(&t, "nobody");
    srm_objects_counts(&t, &n, &r);
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_EQUAL(r, 0);
    CU_ASSERT_TRUE(srm_objects_find(&t, "u0")->gone);

    /* bad input: no uid */
    cJSON *bad = J("{'metadata':{'name':'x'}}");
    CU_ASSERT_PTR_NULL(srm_objects_observe(&t, bad));
    CU_ASSERT_PTR_NULL(srm_objects_observe(&t, NULL));
    CU_ASSERT_EQUAL(t.n, 2);
    cJSON_Delete(bad);
    cJSON_Delete(a);
    cJSON_Delete(b);
    srm_objects_free(&t);
}

/* ---------------------------------------------------------------- oneInstancePerObject */

static void test_one_instance(void)
{
    srm_objects t = {0};
    cJSON *o = cs("web-3", "u3", 1, 1, true, "i-1");
    srm_objects_observe(&t, o);
    srm_viols v = {0};

    /* pass: one live, one crashed, one deleting, one of another object */
    cJSON *ok = arr(inst("i-1", "running", "u3", NULL), inst("i-2", "crashed", "u3", NULL),
                    inst("i-3", "deleting", "u3", NULL));
    cJSON_AddItemToArray(ok, inst("i-4", "running", "u9", NULL));
    CU_ASSERT_EQUAL(srm_check_one_instance(ok, &t, "ns1", &v), 0);
    CU_ASSERT_EQUAL(v.n, 0);

    /* fail: two live */
    cJSON *bad = arr(inst("i-1", "running", "u3", NULL), inst("i-9", "running", NULL, NULL),
                     inst("i-2", "pending", "u3", NULL));
    CU_ASSERT_EQUAL(srm_check_one_instance(bad, &t, "ns1", &v), 1);
    CU_ASSERT_EQUAL_FATAL(v.n, 1);
    CU_ASSERT_STRING_EQUAL(v.items[0],
                           "object web-3 (uid u3): 2 live instances i-1 (running), i-2 (pending)");
    CU_ASSERT_STRING_EQUAL(v.keys[0], "u3 i-1 i-2");
    srm_viols_free(&v);

    /* an object the informer never saw counts by its name tag in our namespace;
     * another namespace's does not */
    cJSON *tagged =
        arr(inst("i-5", "running", "u5", "ns1/db-0"), inst("i-6", "stopped", "u5", "ns1/db-0"),
            inst("i-7", "running", "u7", "other/x"));
    cJSON_AddItemToArray(tagged, inst("i-8", "running", "u7", "other/x"));
    CU_ASSERT_EQUAL(srm_check_one_instance(tagged, &t, "ns1", &v), 1);
    CU_ASSERT_STRING_EQUAL(v.items[0],
                           "object db-0 (uid u5): 2 live instances i-5 (running), i-6 (stopped)");
    srm_viols_free(&v);

    /* two objects' duplicates interleaved, uids out of order: reported in
     * the cloud's order, each with its own instances only */
    cJSON *two = arr(inst("i-20", "running", "zz", "ns1/b"), inst("i-21", "running", "aa", "ns1/a"),
                     inst("i-22", "deleted", "zz", "ns1/b"));
    cJSON_AddItemToArray(two, inst("i-23", "pending", "aa", "ns1/a"));
    cJSON_AddItemToArray(two, inst("i-24", "running", "zz", "ns1/b"));
    CU_ASSERT_EQUAL(srm_check_one_instance(two, &t, "ns1", &v), 2);
    CU_ASSERT_EQUAL_FATAL(v.n, 2);
    CU_ASSERT_STRING_EQUAL(v.items[0],
                           "object b (uid zz): 2 live instances i-20 (running), i-24 (running)");
    CU_ASSERT_STRING_EQUAL(v.items[1],
                           "object a (uid aa): 2 live instances i-21 (running), i-23 (pending)");
    srm_viols_free(&v);
    cJSON_Delete(two);

    /* bad input: not an array, instances without fields */
    CU_ASSERT_EQUAL(srm_check_one_instance(NULL, &t, "ns1", &v), 0);
    cJSON *junk = J("[1, 'x', {}, {'tags':{'cloudserver.dev/uid':'u3'}}]");
    CU_ASSERT_EQUAL(srm_check_one_instance(junk, &t, "ns1", &v), 0);
    cJSON_Delete(junk);
    cJSON_Delete(o);
    cJSON_Delete(ok);
    cJSON_Delete(bad);
    cJSON_Delete(tagged);
    srm_objects_free(&t);
}

/* ---------------------------------------------------------------- statusMatchesCloud */

static void test_status_matches(void)
{
    srm_viols v = {0};
    cJSON *objs =
        arr(cs("web-0", "u0", 1, 1, true, "i-0"), cs("web-1", "u1", 1, 1, false, "i-x"), NULL);
    cJSON *insts = arr(inst("i-0", "running", "u0", NULL), NULL, NULL);
    CU_ASSERT_EQUAL(srm_check_status(objs, insts, &v), 0); /* web-1 is not Ready: not checked */

    /* resizing, with the old memory still showing */
    cJSON *i0 = cJSON_GetArrayItem(insts, 0);
    cJSON_ReplaceItemInObject(i0, "state", cJSON_CreateString("resizing"));
    cJSON_ReplaceItemInObject(i0, "memoryMiB", cJSON_CreateNumber(2048));
    CU_ASSERT_EQUAL(srm_check_status(objs, insts, &v), 1);
    CU_ASSERT_STRING_EQUAL(v.items[0], "object web-0 (uid u0): Ready=True but instance i-0 is "
                                       "resizing, memoryMiB 2048 (spec.memory 4Gi = 4096 MiB)");
    srm_viols_free(&v);

    /* disk, image and zone */
    cJSON_ReplaceItemInObject(i0, "state", cJSON_CreateString("running"));
    cJSON_ReplaceItemInObject(i0, "memoryMiB", cJSON_CreateNumber(4096));
    cJSON_ReplaceItemInObject(i0, "diskGiB", cJSON_CreateNumber(20));
    cJSON_ReplaceItemInObject(i0, "image", cJSON_CreateString("rocky-9"));
    cJSON_ReplaceItemInObject(i0, "zone", cJSON_CreateString("hk-1b"));
    CU_ASSERT_EQUAL(srm_check_status(objs, insts, &v), 1);
    CU_ASSERT_STRING_EQUAL(v.items[0],
                           "object web-0 (uid u0): Ready=True but diskGiB 20 (spec.disk 40Gi = 40 "
                           "GiB), image \"rocky-9\" (spec.image \"debian-12\"), zone \"hk-1b\" "
                           "(status.zone \"hk-1a\")");
    srm_viols_free(&v);

    /* a replacement in another zone of the region, as status.zone says: fine */
    cJSON_ReplaceItemInObject(i0, "diskGiB", cJSON_CreateNumber(40));
    cJSON_ReplaceItemInObject(i0, "image", cJSON_CreateString("debian-12"));
    cJSON *st0 = cJSON_GetObjectItem(cJSON_GetArrayItem(objs, 0), "status");
    cJSON_ReplaceItemInObject(st0, "zone", cJSON_CreateString("hk-1b"));
    CU_ASSERT_EQUAL(srm_check_status(objs, insts, &v), 0);

    /* the instance is gone from the cloud; then status names none */
    cJSON_ReplaceItemInObject(i0, "id", cJSON_CreateString("i-other"));
    CU_ASSERT_EQUAL(srm_check_status(objs, insts, &v), 1);
    CU_ASSERT_STRING_EQUAL(
        v.items[0], "object web-0 (uid u0): Ready=True but instance i-0 is not in the cloud");
    srm_viols_free(&v);
    cJSON_DeleteItemFromObject(st0, "instanceID");
    CU_ASSERT_EQUAL(srm_check_status(objs, insts, &v), 1);
    CU_ASSERT_STRING_EQUAL(v.items[0],
                           "object web-0 (uid u0): Ready=True but status.instanceID is empty");
    srm_viols_free(&v);

    /* a spec the operator could not map (memory not whole MiB) never matches */
    cJSON *o2 = cs("web-2", "u2", 1, 1, true, "i-2");
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(o2, "spec"), "memory",
                              cJSON_CreateString("1.5Ki"));
    cJSON *objs2 = arr(o2, NULL, NULL),
          *insts2 = arr(inst("i-2", "running", "u2", NULL), NULL, NULL);
    CU_ASSERT_EQUAL(srm_check_status(objs2, insts2, &v), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(v.items[0], "memoryMiB 4096 (spec.memory 1.5Ki = -1 MiB)"));
    srm_viols_free(&v);

    cJSON_Delete(objs);
    cJSON_Delete(insts);
    cJSON_Delete(objs2);
    cJSON_Delete(insts2);
}

/* Many objects and instances, the cloud listing them in an order unrelated
 * to their ids (and with ids that share prefixes): each object is paired
 * with its own instance, and one changed instance is the one reported. */
static void test_status_matches_many(void)
{
    enum { N = 600 };
    cJSON *objs = cJSON_CreateArray(), *insts = cJSON_CreateArray();
    for (int i = 0; i < N; i++) {
        char name[32], uid[32], iid[32];
        snprintf(name, sizeof name, "web-%d", i);
        snprintf(uid, sizeof uid, "u%d", i);
        snprintf(iid, sizeof iid, "i-%d", i);
        cJSON_AddItemToArray(objs, cs(name, uid, 1, 1, true, iid));
    }
    for (int k = 0; k < N; k++) {
        int i = (k * 7 + 3) % N; /* a permutation: 7 and 600 are coprime */
        char uid[32], iid[32];
        snprintf(uid, sizeof uid, "u%d", i);
        snprintf(iid, sizeof iid, "i-%d", i);
        cJSON_AddItemToArray(insts, inst(iid, "running", uid, NULL));
    }
    cJSON_AddItemToArray(insts, J("{'state':'running'}")); /* no id: skipped */
    srm_viols v = {0};
    CU_ASSERT_EQUAL(srm_check_status(objs, insts, &v), 0);
    cJSON *it;
    cJSON_ArrayForEach(it, insts)
    {
        const cJSON *id = cJSON_GetObjectItem(it, "id");
        if (cJSON_IsString(id) && strcmp(id->valuestring, "i-59") == 0)
            cJSON_ReplaceItemInObject(it, "cpu", cJSON_CreateNumber(4));
    }
    CU_ASSERT_EQUAL(srm_check_status(objs, insts, &v), 1);
    if (v.n == 1)
        CU_ASSERT_STRING_EQUAL(v.items[0],
                               "object web-59 (uid u59): Ready=True but cpu 4 (spec.cpu 2)");
    srm_viols_free(&v);
    cJSON_Delete(objs);
    cJSON_Delete(insts);
}

/* ---------------------------------------------------------------- observedGeneration, finalizers
 */

static void test_observed_generation(void)
{
    srm_viols v = {0};
    cJSON *objs = arr(cs("a", "ua", 3, 3, true, "i-1"), cs("b", "ub", 4, 2, false, "i-2"), NULL);
    CU_ASSERT_EQUAL(srm_check_observed_generation(objs, &v), 0); /* b is not Ready */
    cJSON_AddItemToArray(objs, cs("c", "uc", 5, 4, true, "i-3"));
    CU_ASSERT_EQUAL(srm_check_observed_generation(objs, &v), 1);
    CU_ASSERT_STRING_EQUAL(v.items[0], "object c (uid uc): Ready=True but "
                                       "status.observedGeneration 4, metadata.generation 5");
    srm_viols_free(&v);
    cJSON_DeleteItemFromObject(cJSON_GetObjectItem(cJSON_GetArrayItem(objs, 0), "status"),
                               "observedGeneration");
    CU_ASSERT_EQUAL(srm_check_observed_generation(objs, &v), 2);
    CU_ASSERT_STRING_EQUAL(v.items[0], "object a (uid ua): Ready=True but "
                                       "status.observedGeneration absent, metadata.generation 3");
    srm_viols_free(&v);
    cJSON_Delete(objs);
}

static void test_finalizers(void)
{
    srm_viols v = {0};
    cJSON *objs = arr(cs("a", "ua", 1, 1, true, "i-1"), NULL, NULL);
    CU_ASSERT_EQUAL(srm_check_finalizers(objs, &v), 0);
    CU_ASSERT_EQUAL(srm_check_finalizers(NULL, &v), 0);
    cJSON *md = cJSON_GetObjectItem(cJSON_GetArrayItem(objs, 0), "metadata");
    cJSON_AddStringToObject(md, "deletionTimestamp", "2027-01-15T08:00:00Z");
    cJSON_AddItemToObject(md, "finalizers", J("['cloudserver.dev/finalizer','x/y']"));
    CU_ASSERT_EQUAL(srm_check_finalizers(objs, &v), 1);
    CU_ASSERT_STRING_EQUAL(v.items[0],
                           "object a (uid ua): still present after cleanup with deletionTimestamp "
                           "2027-01-15T08:00:00Z, finalizers [cloudserver.dev/finalizer, x/y]");
    srm_viols_free(&v);
    cJSON_Delete(objs);
}

/* ---------------------------------------------------------------- noOrphans */

static void test_orphans(void)
{
    srm_objects t = {0};
    cJSON *a = cs("a", "ua", 1, 1, true, "i-1"), *b = cs("b", "ub", 1, 1, true, "i-2");
    cJSON_AddStringToObject(cJSON_GetObjectItem(b, "spec"), "deletionPolicy", "Retain");
    srm_objects_observe(&t, a);
    srm_objects_observe(&t, b);
    srm_viols v = {0};
    /* a still exists: its instance is no orphan; the retained one was untagged */
    cJSON *insts =
        arr(inst("i-1", "running", "ua", NULL), inst("i-2", "running", NULL, NULL), NULL);
    srm_objects_gone(&t, "ub");
    CU_ASSERT_EQUAL(srm_check_orphans(insts, &t, &v), 0);

    /* both deleted: a's instance still running (fail); a deleting one is going (fine) */
    srm_objects_gone(&t, "ua");
    cJSON_AddItemToArray(insts, inst("i-3", "deleting", "ua", NULL));
    CU_ASSERT_EQUAL(srm_check_orphans(insts, &t, &v), 1);
    CU_ASSERT_STRING_EQUAL(
        v.items[0], "object a (uid ua), deleted: instance i-1 (running) still carries its uid tag");
    srm_viols_free(&v);

    /* a Retain object whose instance kept the tag */
    cJSON_AddItemToArray(insts, inst("i-4", "crashed", "ub", NULL));
    CU_ASSERT_EQUAL(srm_check_orphans(insts, &t, &v), 2);
    CU_ASSERT_STRING_EQUAL(v.items[1], "object b (uid ub), deleted: instance i-4 (crashed) still "
                                       "carries its uid tag (deletionPolicy Retain: it should have "
                                       "been untagged)");
    srm_viols_free(&v);
    cJSON_Delete(a);
    cJSON_Delete(b);
    cJSON_Delete(insts);
    srm_objects_free(&t);
}

/* ---------------------------------------------------------------- noDuplicateCreates */

static void test_duplicates(void)
{
    srm_objects t = {0};
    cJSON *o = cs("web-1", "u1", 1, 1, true, "i-2");
    srm_objects_observe(&t, o);
    srm_seen seen = {0};
    srm_viols v = {0};

    cJSON *creates = J("[{'seq':3,'method':'POST','path':'/v1/instances','status':202,"
                       "'idempotencyKey':'u1'}]");
    cJSON *keys =
        J("[{'key':'u1','request':'POST /v1/instances','target':'i-1'},"
          "{'key':'u1-snap-100','request':'POST /v1/instances/i-1/snapshots','target':'snap-1'}]");
    /* one create, seen live */
    cJSON *live = arr(inst("i-1", "running", "u1", NULL), NULL, NULL);
    CU_ASSERT_EQUAL(srm_seen_add(&seen, live), 0);
    CU_ASSERT_STRING_EQUAL(srm_seen_uid(&seen, "i-1"), "u1");
    CU_ASSERT_EQUAL(srm_check_duplicates(creates, keys, &seen, &t, &v), 0);

    /* a failover: a second instance (never seen live, tied by its key) is allowed
     * once failoverCount is 1 */
    cJSON_AddItemToArray(keys,
                         J("{'key':'u1-attempt-1','request':'POST /v1/instances','target':'i-2'}"));
    CU_ASSERT_EQUAL(srm_check_duplicates(creates, keys, &seen, &t, &v), 1);
    CU_ASSERT_STRING_EQUAL(v.items[0], "object web-1 (uid u1): 2 instances created (i-1, i-2), at "
                                       "most 1 allowed (1 + failoverCount 0)");
    srm_viols_free(&v);
    cJSON_AddNumberToObject(cJSON_GetObjectItem(o, "status"), "failoverCount", 1);
    srm_objects_observe(&t, o);
    CU_ASSERT_EQUAL(srm_check_duplicates(creates, keys, &seen, &t, &v), 0);

    /* a create with a key that does not name the uid (seen with the tag), and a
     * create without any key */
    cJSON_AddItemToArray(keys,
                         J("{'key':'3f2a-random','request':'POST /v1/instances','target':'i-3'}"));
    cJSON *more = arr(inst("i-3", "deleting", "u1", NULL), NULL, NULL);
    srm_seen_add(&seen, more);
    cJSON_AddItemToArray(creates, J("{'seq':9,'method':'POST','path':'/v1/instances','status':202,"
                                    "'idempotencyKey':null}"));
    CU_ASSERT_EQUAL(srm_check_duplicates(creates, keys, &seen, &t, &v), 3);
    CU_ASSERT_EQUAL_FATAL(v.n, 3);
    CU_ASSERT_STRING_EQUAL(v.items[0], "a create without Idempotency-Key: journal seq 9 POST "
                                       "/v1/instances answered 202");
    CU_ASSERT_STRING_EQUAL(v.items[1],
                           "object web-1 (uid u1): instance i-3 was created with Idempotency-Key "
                           "\"3f2a-random\", not the contract's \"<uid>\" or \"<uid>-attempt-N\"");
    CU_ASSERT_STRING_EQUAL(v.items[2],
                           "object web-1 (uid u1): 3 instances created (i-1, i-3, i-2), "
                           "at most 2 allowed (1 + failoverCount 1)");
    srm_viols_free(&v);

    /* keys that only look like ours tie nothing to the object: another uid
     * with our uid as prefix, a random suffix (the operator's
     * no-idempotency-key break), an attempt that is not a number */
    srm_seen_free(&seen);
    cJSON *keys2 = J("[{'key':'u1x','request':'POST /v1/instances','target':'i-7'},"
                     "{'key':'u1-0123456789abcdef','request':'POST /v1/instances','target':'i-8'},"
                     "{'key':'u1-attempt-','request':'POST /v1/instances','target':'i-9'},"
                     "{'key':'u1-attempt-2x','request':'POST /v1/instances','target':'i-10'},"
                     "{'key':'u1','request':'POST /v1/instances','target':'i-1'}]");
    CU_ASSERT_EQUAL(srm_check_duplicates(NULL, keys2, &seen, &t, &v), 0);
    /* ... and once seen with the uid tag, the break-mode key is named */
    cJSON *brk = arr(inst("i-8", "running", "u1", NULL), NULL, NULL);
    srm_seen_add(&seen, brk);
    CU_ASSERT_EQUAL(srm_check_duplicates(NULL, keys2, &seen, &t, &v), 1);
    CU_ASSERT_PTR_NOT_NULL(v.n ? strstr(v.items[0], "\"u1-0123456789abcdef\", not the contract's")
                               : NULL);
    srm_viols_free(&v);
    cJSON_Delete(brk);

    cJSON_Delete(o);
    cJSON_Delete(creates);
    cJSON_Delete(keys);
    cJSON_Delete(keys2);
    cJSON_Delete(live);
    cJSON_Delete(more);
    srm_seen_free(&seen);
    srm_objects_free(&t);
}

/* ---------------------------------------------------------------- recovery and windows */

static void test_fault_windows(void)
{
    srm_faults f = {0};
    CU_ASSERT_EQUAL(srm_fault_open(&f, "outage", "503 on /v1/**", 4), 0);
    CU_ASSERT_EQUAL(srm_fault_open(&f, "fault", "slow", 5), 0);
    CU_ASSERT_EQUAL(srm_fault_open(&f, "outage", "503 on /v1/**", 7), 0);
    long open[8];
    CU_ASSERT_EQUAL(srm_faults_open_indexes(&f, open, 8), 3);

    /* clear closes the latest open window of that kind/what */
    CU_ASSERT_EQUAL(srm_fault_clear(&f, "outage", "503 on /v1/**", 10 * S, true), 7);
    CU_ASSERT_EQUAL(srm_fault_clear(&f, "outage", "503 on /v1/**", 12 * S, true), 4);
    /* nothing open of that kind: an instant (a crash) */
    CU_ASSERT_EQUAL(srm_fault_clear(&f, "outage", "503 on /v1/**", 13 * S, true), -1);
    CU_ASSERT_EQUAL(srm_fault_clear(&f, "crash", "2 instances", 20 * S, true), -1);
    CU_ASSERT_EQUAL(srm_faults_open_indexes(&f, open, 8), 1);
    CU_ASSERT_EQUAL(open[0], 5);

    int64_t first = 0;
    const char *what = NULL;
    CU_ASSERT_EQUAL(srm_recovery_pending(&f, &first, &what), 4);
    CU_ASSERT_EQUAL(first, 10 * S);
    CU_ASSERT_STRING_EQUAL(what, "outage 503 on /v1/**");

    /* a snapshot asked at 15 s confirms recovery (Ready since 14 s): the
     * clocks started by then end; the crash's (20 s) keeps running */
    int64_t d[8];
    CU_ASSERT_EQUAL(srm_recovery_end(&f, 15 * S, 14 * S, d, 8), 3);
    CU_ASSERT_EQUAL(d[0], 4 * S);
    CU_ASSERT_EQUAL(d[1], 2 * S);
    CU_ASSERT_EQUAL(d[2], 1 * S);
    CU_ASSERT_EQUAL(srm_recovery_pending(&f, &first, &what), 1);
    CU_ASSERT_EQUAL(first, 20 * S);
    CU_ASSERT_STRING_EQUAL(what, "crash 2 instances");
    /* Ready since before the clear (the fault changed nothing): 0 */
    CU_ASSERT_EQUAL(srm_recovery_end(&f, 21 * S, 18 * S, d, 8), 1);
    CU_ASSERT_EQUAL(d[0], 0);
    CU_ASSERT_EQUAL(srm_recovery_pending(&f, NULL, NULL), 0);
    CU_ASSERT_EQUAL(srm_recovery_end(&f, 30 * S, 30 * S, d, 8), 0);
    /* a snapshot asked at the very moment of the clear already counts */
    CU_ASSERT_EQUAL(srm_fault_clear(&f, "crash", "1 instance", 40 * S, true), -1);
    CU_ASSERT_EQUAL(srm_recovery_end(&f, 40 * S - 1, 41 * S, d, 8), 0);
    CU_ASSERT_EQUAL(srm_recovery_end(&f, 40 * S, 41 * S, d, 8), 1);
    CU_ASSERT_EQUAL(d[0], S);
    /* after the live phase a clear closes its window but starts no clock */
    CU_ASSERT_EQUAL(srm_fault_open(&f, "fault", "late", 9), 0);
    CU_ASSERT_EQUAL(srm_fault_clear(&f, "fault", "late", 50 * S, false), 9);
    CU_ASSERT_EQUAL(srm_recovery_pending(&f, NULL, NULL), 0);
    srm_faults_free(&f);
}

/* srm_cloud_state, with "(none)" for a missing instance (a test that
 * fails, not one that crashes). */
static const char *state_or_none(const srm_cloud *c, const char *id)
{
    const char *st = srm_cloud_state(c, id);
    return st ? st : "(none)";
}

static void test_recovered(void)
{
    srm_objects t = {0};
    srm_cloud c = {0};
    CU_ASSERT_TRUE(srm_recovered(&t, NULL)); /* no objects: vacuously */
    cJSON *a = cs("a", "ua", 2, 2, true, "i-1"), *b = cs("b", "ub", 1, 1, true, "i-2");
    srm_objects_observe(&t, a);
    srm_objects_observe(&t, b);
    cJSON *insts =
        arr(inst("i-1", "running", "ua", NULL), inst("i-2", "crashed", "ub", NULL), NULL);
    CU_ASSERT_EQUAL(srm_cloud_set(&c, insts), 0);
    CU_ASSERT_STRING_EQUAL(srm_cloud_state(&c, "i-2"), "crashed");
    CU_ASSERT_PTR_NULL(srm_cloud_state(&c, "i-9"));
    {
        /* listed in no particular order, ids sharing prefixes */
        srm_cloud d = {0};
        cJSON *l = arr(inst("i-30", "stopped", "ux", NULL), inst("i-3", "running", "uy", NULL),
                       inst("i-10", "pending", "uz", NULL));
        cJSON_AddItemToArray(l, inst("i-1", "deleted", "uw", NULL));
        CU_ASSERT_EQUAL(srm_cloud_set(&d, l), 0);
        CU_ASSERT_STRING_EQUAL(state_or_none(&d, "i-30"), "stopped");
        CU_ASSERT_STRING_EQUAL(state_or_none(&d, "i-3"), "running");
        CU_ASSERT_STRING_EQUAL(state_or_none(&d, "i-10"), "pending");
        CU_ASSERT_STRING_EQUAL(state_or_none(&d, "i-1"), "deleted");
        CU_ASSERT_PTR_NULL(srm_cloud_state(&d, "i-2"));
        CU_ASSERT_PTR_NULL(srm_cloud_state(&d, NULL));
        srm_cloud_free(&d);
        cJSON_Delete(l);
    }
    CU_ASSERT_TRUE(srm_recovered(&t, NULL));
    CU_ASSERT_FALSE(srm_recovered(&t, &c)); /* b's Ready is stale: its instance crashed */

    /* b replaced and Ready on i-3 */
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(b, "status"), "instanceID",
                              cJSON_CreateString("i-3"));
    srm_objects_observe(&t, b);
    cJSON_AddItemToArray(insts, inst("i-3", "running", "ub", NULL));
    srm_cloud_set(&c, insts);
    CU_ASSERT_TRUE(srm_recovered(&t, &c));

    /* a spec change not yet observed */
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(a, "metadata"), "generation",
                              cJSON_CreateNumber(3));
    srm_objects_observe(&t, a);
    CU_ASSERT_FALSE(srm_recovered(&t, &c));
    /* ... but an object being deleted does not count, nor one gone */
    cJSON_AddStringToObject(cJSON_GetObjectItem(a, "metadata"), "deletionTimestamp",
                            "2027-01-01T00:00:00Z");
    srm_objects_observe(&t, a);
    CU_ASSERT_TRUE(srm_recovered(&t, &c));
    srm_objects_gone(&t, "ub");
    CU_ASSERT_TRUE(srm_recovered(&t, &c));

    cJSON_Delete(a);
    cJSON_Delete(b);
    cJSON_Delete(insts);
    srm_cloud_free(&c);
    srm_objects_free(&t);
}

/* ---------------------------------------------------------------- create-to-Ready */

static void test_ctr(void)
{
    srm_ctr c = {0};
    int64_t clock = 100 * S; /* a fake clock the test moves */

    CU_ASSERT_EQUAL(srm_ctr_created(&c, "u1", clock), -1);
    clock += 3 * S;
    CU_ASSERT_EQUAL(srm_ctr_ready(&c, "u1", clock), 3 * S);
    clock += S;
    CU_ASSERT_EQUAL(srm_ctr_ready(&c, "u1", clock), -1);   /* only the first sight */
    CU_ASSERT_EQUAL(srm_ctr_created(&c, "u1", clock), -1); /* and once */

    /* an object not created through the engine is ignored */
    CU_ASSERT_EQUAL(srm_ctr_ready(&c, "other", clock), -1);

    /* Ready seen before the engine reported its create answer: the pair completes
     * on the created call (0 when Ready came first) */
    CU_ASSERT_EQUAL(srm_ctr_ready(&c, "u2", clock), -1);
    CU_ASSERT_EQUAL(srm_ctr_created(&c, "u2", clock + S), 0);
    CU_ASSERT_EQUAL(srm_ctr_ready(&c, "u3", clock + 5 * S), -1);
    CU_ASSERT_EQUAL(srm_ctr_created(&c, "u3", clock + 2 * S), 3 * S);
    CU_ASSERT_EQUAL(c.created, 3);

    /* bad input */
    CU_ASSERT_EQUAL(srm_ctr_created(&c, NULL, clock), -1);
    CU_ASSERT_EQUAL(srm_ctr_ready(&c, "u4", 0), -1);
    CU_ASSERT_EQUAL(c.created, 3);
    srm_ctr_free(&c);
}

/* ---------------------------------------------------------------- counters and Events */

static void test_counter(void)
{
    srm_counter c = {0};
    CU_ASSERT_DOUBLE_EQUAL(srm_counter_feed(&c, 50, 1000), 0, 1e-9); /* baseline */
    CU_ASSERT_DOUBLE_EQUAL(srm_counter_feed(&c, 57, 1000), 7, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(srm_counter_feed(&c, 57, 1000), 0, 1e-9);
    /* restarted (start time moved): all it counted is new, even if larger */
    CU_ASSERT_DOUBLE_EQUAL(srm_counter_feed(&c, 60, 1100), 60, 1e-9);
    /* the value fell without a start time (missing metric): a restart too */
    CU_ASSERT_DOUBLE_EQUAL(srm_counter_feed(&c, 4, 1100), 4, 1e-9);
}

typedef struct counts {
    char reasons[8][32];
    long n[8];
    int k;
} counts;

static void add_count(void *ctx, const char *reason, long n)
{
    counts *c = ctx;
    if (c->k >= 8) return;
    snprintf(c->reasons[c->k], sizeof c->reasons[0], "%s", reason);
    c->n[c->k++] = n;
}

static void test_warning_reasons(void)
{
    cJSON *items = J("[{'type':'Normal','reason':'Creating'},"
                     "{'type':'Warning','reason':'FailedOver'},"
                     "{'type':'Warning','reason':'CloudUnreachable','series':{'count':7}},"
                     "{'type':'Warning','reason':'Old','deprecatedCount':3},"
                     "{'type':'Warning'}, 5]");
    counts c = {0};
    CU_ASSERT_EQUAL(srm_warning_reasons(items, add_count, &c), 4);
    CU_ASSERT_EQUAL_FATAL(c.k, 4);
    CU_ASSERT_STRING_EQUAL(c.reasons[0], "FailedOver");
    CU_ASSERT_EQUAL(c.n[0], 1);
    CU_ASSERT_STRING_EQUAL(c.reasons[1], "CloudUnreachable");
    CU_ASSERT_EQUAL(c.n[1], 7);
    CU_ASSERT_EQUAL(c.n[2], 3);
    CU_ASSERT_STRING_EQUAL(c.reasons[3], "(none)");
    CU_ASSERT_EQUAL(srm_warning_reasons(NULL, add_count, &c), 0);
    cJSON_Delete(items);
}

static CU_TestInfo basics[] = {
    {"violation summaries", test_viols_summary},
    {"live instance states", test_live_states},
    {"object table", test_objects_table},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo invariants[] = {
    {"oneInstancePerObject", test_one_instance},
    {"statusMatchesCloud", test_status_matches},
    {"statusMatchesCloud over 600 objects in cloud order", test_status_matches_many},
    {"observedGeneration", test_observed_generation},
    {"finalizersReleased", test_finalizers},
    {"noOrphans", test_orphans},
    {"noDuplicateCreates", test_duplicates},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo bookkeeping[] = {
    {"fault windows and recovery clocks", test_fault_windows},
    {"recovery condition", test_recovered},
    {"create-to-Ready on a fake clock", test_ctr},
    {"counters across restarts", test_counter},
    {"Warning Event reasons", test_warning_reasons},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"monitor basics", NULL, NULL, NULL, NULL, basics},
    {"invariants", NULL, NULL, NULL, NULL, invariants},
    {"monitor bookkeeping", NULL, NULL, NULL, NULL, bookkeeping},
    CU_SUITE_INFO_NULL,
};

CSL_TEST_MAIN(suites)
