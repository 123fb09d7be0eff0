/* test_kube_events.c — the event recorder against a real kube-apiserver
 * (CSL_KUBECONFIG): identical events aggregate into one events.k8s.io/v1
 * Event whose series counts them, different reasons make different Events,
 * the per-object spam limit holds back writes, and free flushes. */
#include "../testutil.h"

#include "csl/clock.h"
#include "csl/events.h"
#include "csl/kube.h"
#include "csl/log.h"
#include "kube_testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static csl_kube_config cfg;
static csl_kube *kube;
static char ns[64];

static const csl_kube_resource namespaces = {"", "v1", "namespaces", false};
static const csl_kube_resource configmaps = {"", "v1", "configmaps", true};
static const csl_kube_resource events = {"events.k8s.io", "v1", "events", true};

static int suite_init(void)
{
    if (kt_connect(NULL, &cfg, &kube) != 0) return 1;
    snprintf(ns, sizeof ns, "k4-events-%llx", (unsigned long long)csl_microtime_now());
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

static cJSON *make_configmap(const char *name)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "apiVersion", "v1");
    cJSON_AddStringToObject(o, "kind", "ConfigMap");
    cJSON *meta = cJSON_AddObjectToObject(o, "metadata");
    cJSON_AddStringToObject(meta, "name", name);
    cJSON_AddStringToObject(meta, "namespace", ns);
    csl_kube_error err;
    cJSON *made = csl_kube_create(kube, &configmaps, ns, o, &err);
    cJSON_Delete(o);
    if (!made) fprintf(stderr, "create configmap %s: %s\n", name, err.message);
    return made;
}

static csl_event_recorder *new_recorder(int burst)
{
    char err[256];
    csl_event_options opt = {.reporting_controller = "cloudserver.dev/test", .spam_burst = burst};
    csl_event_recorder *r = csl_event_recorder_new(kube, &opt, err, sizeof err);
    if (!r) fprintf(stderr, "%s\n", err);
    return r;
}

/* The Events about the object named `about`, as the server has them. */
static cJSON *events_about(const char *about)
{
    csl_kube_error err;
    char sel[128];
    snprintf(sel, sizeof sel, "regarding.name=%s", about);
    csl_kube_list_opts lo = {.field_selector = sel};
    cJSON *list = csl_kube_list(kube, &events, ns, &lo, &err);
    if (!list) fprintf(stderr, "list events: %s\n", err.message);
    return list;
}

static cJSON *items(cJSON *list)
{
    return cJSON_GetObjectItemCaseSensitive(list, "items");
}

static const char *str(const cJSON *o, const char *a, const char *b)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, a);
    if (b) v = cJSON_GetObjectItemCaseSensitive(v, b);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int series_count(const cJSON *ev)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(ev, "series");
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(s, "count");
    return cJSON_IsNumber(c) ? c->valueint : 0;
}

static void test_five_identical_one_event(void)
{
    cJSON *cm = make_configmap("cm-five");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cm);
    csl_event_recorder *r = new_recorder(0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    int64_t t = csl_mono_ns();
    for (int i = 0; i < 5; i++) {
        CU_ASSERT_EQUAL(csl_event_record(r, cm, "Warning", "ProvisioningTimeout",
                                         "instance %s not running after %d s", "i-0042", 300),
                        0);
        /* Spread over time so that some repeats are patched one by one,
         * some coalesced: either way the count must come out right. */
        if (i == 1) CU_ASSERT(csl_event_recorder_sync(r, 10000));
    }
    CU_ASSERT(csl_event_recorder_sync(r, 10000));
    double ms = (double)(csl_mono_ns() - t) / 1e6;
    printf("\n    5 records written in %.1f ms ", ms);

    cJSON *list = events_about("cm-five");
    CU_ASSERT_PTR_NOT_NULL_FATAL(list);
    CU_ASSERT_EQUAL_FATAL(cJSON_GetArraySize(items(list)), 1);
    cJSON *ev = cJSON_GetArrayItem(items(list), 0);
    CU_ASSERT_EQUAL(series_count(ev), 5);
    CU_ASSERT_STRING_EQUAL(str(ev, "reason", NULL), "ProvisioningTimeout");
    CU_ASSERT_STRING_EQUAL(str(ev, "type", NULL), "Warning");
    CU_ASSERT_STRING_EQUAL(str(ev, "note", NULL), "instance i-0042 not running after 300 s");
    CU_ASSERT_STRING_EQUAL(str(ev, "reportingController", NULL), "cloudserver.dev/test");
    CU_ASSERT_PTR_NOT_NULL(str(ev, "reportingInstance", NULL));
    CU_ASSERT_STRING_EQUAL(str(ev, "regarding", "uid"), csl_kube_obj_uid(cm));
    CU_ASSERT_STRING_EQUAL(str(ev, "regarding", "kind"), "ConfigMap");
    CU_ASSERT_STRING_EQUAL(str(ev, "regarding", "namespace"), ns);
    CU_ASSERT_STRING_EQUAL(str(ev, "regarding", "resourceVersion"), csl_kube_obj_rv(cm));
    const char *name = csl_kube_obj_name(ev);
    CU_ASSERT(name && strncmp(name, "cm-five.", 8) == 0);
    /* eventTime (the first) is not after lastObservedTime (the latest). */
    int64_t first, last;
    CU_ASSERT_EQUAL(csl_rfc3339_parse(str(ev, "eventTime", NULL), &first), 0);
    CU_ASSERT_EQUAL(csl_rfc3339_parse(str(ev, "series", "lastObservedTime"), &last), 0);
    CU_ASSERT(first <= last);
    csl_event_stats st;
    csl_event_recorder_stats(r, &st);
    CU_ASSERT_EQUAL(st.created, 1);
    CU_ASSERT(st.patched >= 1 && st.patched <= 4);
    CU_ASSERT_EQUAL(st.failed, 0);
    cJSON_Delete(list);
    csl_event_recorder_free(r);
    cJSON_Delete(cm);
}

static void test_two_reasons_two_events(void)
{
    cJSON *cm = make_configmap("cm-two");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cm);
    csl_event_recorder *r = new_recorder(0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    csl_event_record(r, cm, "Normal", "Created", "instance %s created", "i-1");
    csl_event_record(r, cm, "Warning", "FailedOver", "instance %s replaced", "i-1");
    csl_event_record(r, cm, "Normal", "Created", "instance %s created", "i-1");
    CU_ASSERT(csl_event_recorder_sync(r, 10000));
    cJSON *list = events_about("cm-two");
    CU_ASSERT_PTR_NOT_NULL_FATAL(list);
    CU_ASSERT_EQUAL_FATAL(cJSON_GetArraySize(items(list)), 2);
    int created = 0, failed_over = 0;
    cJSON *ev;
    cJSON_ArrayForEach(ev, items(list))
    {
        const char *reason = str(ev, "reason", NULL);
        if (reason && strcmp(reason, "Created") == 0) {
            created++;
            CU_ASSERT_EQUAL(series_count(ev), 2);
        } else if (reason && strcmp(reason, "FailedOver") == 0) {
            failed_over++;
            CU_ASSERT_EQUAL(series_count(ev), 0); /* a singleton: no series */
            CU_ASSERT_STRING_EQUAL(str(ev, "type", NULL), "Warning");
        }
    }
    CU_ASSERT_EQUAL(created, 1);
    CU_ASSERT_EQUAL(failed_over, 1);
    cJSON_Delete(list);
    csl_event_recorder_free(r);
    cJSON_Delete(cm);
}

static void test_spam_limit(void)
{
    cJSON *cm = make_configmap("cm-spam");
    cJSON *other = make_configmap("cm-quiet");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cm);
    CU_ASSERT_PTR_NOT_NULL_FATAL(other);
    csl_event_recorder *r = new_recorder(3);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    /* Six distinct events on one object, burst 3: three Events. */
    for (int i = 0; i < 6; i++) csl_event_record(r, cm, "Normal", "Tick", "tick %d", i);
    csl_event_record(r, other, "Normal", "Tick", "tick 0");
    CU_ASSERT(csl_event_recorder_sync(r, 10000));
    cJSON *list = events_about("cm-spam");
    CU_ASSERT_EQUAL(cJSON_GetArraySize(items(list)), 3);
    cJSON_Delete(list);
    list = events_about("cm-quiet");
    CU_ASSERT_EQUAL(cJSON_GetArraySize(items(list)), 1);
    cJSON_Delete(list);
    csl_event_stats st;
    csl_event_recorder_stats(r, &st);
    CU_ASSERT_EQUAL(st.created, 4);
    CU_ASSERT_EQUAL(st.spam_held, 3);
    csl_event_recorder_free(r);
    cJSON_Delete(cm);
    cJSON_Delete(other);
}

static void test_flush_on_free(void)
{
    cJSON *cm = make_configmap("cm-flush");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cm);
    csl_event_recorder *r = new_recorder(0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    csl_event_record(r, cm, "Normal", "Bye", "last words");
    csl_event_record(r, cm, "Normal", "Bye", "last words");
    csl_event_recorder_free(r);
    cJSON *list = events_about("cm-flush");
    CU_ASSERT_EQUAL_FATAL(cJSON_GetArraySize(items(list)), 1);
    CU_ASSERT_EQUAL(series_count(cJSON_GetArrayItem(items(list), 0)), 2);
    cJSON_Delete(list);
    cJSON_Delete(cm);
}

static CU_TestInfo tests[] = {
    {"5 identical records: one Event, series.count 5", test_five_identical_one_event},
    {"two reasons: two Events", test_two_reasons_two_events},
    {"spam limit per object", test_spam_limit},
    {"free flushes", test_flush_on_free},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"kube events", suite_init, suite_cleanup, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

CSL_TEST_MAIN(suites)
