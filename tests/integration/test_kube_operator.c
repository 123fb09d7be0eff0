/* test_kube_operator.c — the real cloudserver-operator against a real
 * kube-apiserver (env CSL_KUBECONFIG; `make kube-integration` brings the
 * local plane up) and a real mockcloud (CSL_BIN_DIR).
 *
 * What the operator must do, judged from outside only: objects through our
 * Kubernetes client, instances and the request journal through mockcloud.
 * Each case works in a namespace of its own. One mockcloud + operator pair
 * serves the "operator" suite; the credentials, kill/restart, leader and
 * mutation cases each start their own, because they break or kill it.
 *
 * The checks are functions that return whether the operator behaved (and
 * say why not), so the last suite can run an operator with a test-only
 * mutation (CSL_OPERATOR_BREAK=no-failover) and assert that the failover
 * check notices: a check that cannot fail proves nothing. Set
 * CSL_OPERATOR_BREAK in the environment to run every suite against a
 * mutated operator by hand (the matching cases must then fail).
 *
 * Every wait polls with a generous bound (the operator notices a crash at
 * its periodic cloud listing, every 10 s). Processes are stopped by PID
 * (SIGTERM, exit 0 required, stderr free of sanitizer reports) and killed
 * at tear-down on any failure path, their stderr printed when a case
 * fails. Run from the repository root (the CRDs come from
 * config/crd/bases, or CSL_CRD_DIR). */
#include "../testutil.h"
#include "operator_harness.h"

#include "csl/clock.h"
#include "csl/kube.h"
#include "csl/log.h"
#include "kube_testutil.h"

#define FM "csl-operator-test"
#define TOKEN_GOOD "it-token-good"
#define TOKEN_BAD "it-token-wrong"
#define FINALIZER "cloudserver.dev/finalizer"
#define TAG_UID "cloudserver.dev/uid"
#define TAG_NAME "cloudserver.dev/name"
#define POLL_MS 200
#define MAX_NS 16
#define MAX_KEEP 2048

static const csl_kube_resource cs_res = {"cloudserver.dev", "v1", "cloudservers", true};
static const csl_kube_resource css_res = {"cloudserver.dev", "v1", "cloudserversets", true};
static const csl_kube_resource ns_res = {"", "v1", "namespaces", false};
static const csl_kube_resource secret_res = {"", "v1", "secrets", true};
static const csl_kube_resource lease_res = {"coordination.k8s.io", "v1", "leases", true};
static const csl_kube_resource event_res = {"events.k8s.io", "v1", "events", true};

static const char *kubeconfig;
static csl_kube_config kcfg;
static csl_kube *kube;
static bool crds_ready;
static unsigned run_id;

/* What one suite set up; reset by every suite's init. */
static struct {
    char sys_ns[64]; /* the credentials Secret and the Lease */
    char secret_arg[160];
    char endpoint[96];
    mch_server *mc;
    oph_operator *op[2];
    char ns[MAX_NS][64];
    int n_ns;
} env;

/* Per-test pool of cJSON trees and strings, freed at every test's end so
 * a FATAL assertion leaks nothing. */
static void *kept[MAX_KEEP];
static bool kept_json[MAX_KEEP];
static unsigned failures_at_start;

static cJSON *keepj(cJSON *j)
{
    if (!j) return NULL;
    for (int i = 0; i < MAX_KEEP; i++)
        if (!kept[i]) {
            kept[i] = j;
            kept_json[i] = true;
            return j;
        }
    fprintf(stderr, "test: keep pool full\n");
    return j;
}

static const char *keeps(const char *s)
{
    if (!s) return NULL;
    char *d = strdup(s);
    for (int i = 0; d && i < MAX_KEEP; i++)
        if (!kept[i]) {
            kept[i] = d;
            kept_json[i] = false;
            return d;
        }
    return d;
}

static void kept_free(void)
{
    for (int i = 0; i < MAX_KEEP; i++) {
        if (!kept[i]) continue;
        if (kept_json[i])
            cJSON_Delete(kept[i]);
        else
            free(kept[i]);
        kept[i] = NULL;
    }
}

static void kerr(const char *what, const csl_kube_error *e)
{
    fprintf(stderr, "\n  %s: %s (%s, HTTP %d)\n", what, e->message, csl_kube_code_name(e->code),
            e->status);
}

static int64_t now_ms(void)
{
    return csl_mono_ns() / 1000000;
}

/* ------------------------------------------------------------ object access */

static const cJSON *at(const cJSON *j, const char *path)
{
    return mch_at(j, path);
}

static const char *str_at(const cJSON *j, const char *path)
{
    return mch_str(j, path);
}

static double num_at(const cJSON *j, const char *path, double def)
{
    return mch_num(j, path, def);
}

/* The status of condition type in o's status.conditions, or NULL. */
static const cJSON *condition(const cJSON *o, const char *type)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, at(o, "status.conditions"))
    {
        if (mch_streq(str_at(c, "type"), type)) return c;
    }
    return NULL;
}

static bool cond_is(const cJSON *o, const char *type, const char *status)
{
    return mch_streq(str_at(condition(o, type), "status"), status);
}

static bool has_finalizer(const cJSON *o)
{
    const cJSON *f;
    cJSON_ArrayForEach(f, at(o, "metadata.finalizers"))
    {
        if (cJSON_IsString(f) && strcmp(f->valuestring, FINALIZER) == 0) return true;
    }
    return false;
}

/* Ready as the contract means it: Running, Ready=True, an instance, and
 * the spec of this generation carried out. */
static bool cs_ready(const cJSON *o)
{
    double gen = num_at(o, "metadata.generation", -1);
    const char *id = str_at(o, "status.instanceID");
    return mch_streq(str_at(o, "status.phase"), "Running") && cond_is(o, "Ready", "True") && id &&
           *id && num_at(o, "status.observedGeneration", -2) == gen;
}

static void print_obj(const char *what, const cJSON *o)
{
    if (!o) {
        fprintf(stderr, "  %s: (no object)\n", what);
        return;
    }
    cJSON *c = cJSON_CreateObject();
    cJSON_AddItemToObject(c, "metadata", cJSON_Duplicate(at(o, "metadata"), 1));
    cJSON_AddItemToObject(c, "status", cJSON_Duplicate(at(o, "status"), 1));
    cJSON_DeleteItemFromObject(cJSON_GetObjectItem(c, "metadata"), "managedFields");
    char *s = cJSON_PrintUnformatted(c);
    fprintf(stderr, "  %s: %.3000s\n", what, s ? s : "?");
    free(s);
    cJSON_Delete(c);
}

/* ------------------------------------------------------------ kube helpers */

static cJSON *kget(const csl_kube_resource *res, const char *ns, const char *name,
                   csl_kube_error *e)
{
    return keepj(csl_kube_get(kube, res, ns, name, NULL, e));
}

static int make_namespace(const char *name)
{
    char body[256];
    snprintf(body, sizeof body,
             "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"%s\"}}", name);
    cJSON *o = cJSON_Parse(body);
    csl_kube_error e;
    cJSON *r = csl_kube_create(kube, &ns_res, NULL, o, &e);
    cJSON_Delete(o);
    if (!r && e.code != CSL_KUBE_ALREADY_EXISTS) {
        kerr("create namespace", &e);
        return -1;
    }
    cJSON_Delete(r);
    return 0;
}

/* A fresh namespace for one case, removed at the suite's end. */
static const char *case_ns(const char *label)
{
    if (env.n_ns >= MAX_NS) return NULL;
    char *ns = env.ns[env.n_ns];
    snprintf(ns, 64, "op-%s-%u", label, run_id);
    if (make_namespace(ns) != 0) return NULL;
    env.n_ns++;
    return ns;
}

static int put_secret(const char *ns, const char *name, const char *token)
{
    char body[512];
    snprintf(body, sizeof body,
             "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"%s\","
             "\"namespace\":\"%s\"},\"type\":\"Opaque\",\"stringData\":{\"token\":\"%s\"}}",
             name, ns, token);
    csl_kube_patch_opts po = {.field_manager = FM, .force = true};
    csl_kube_error e;
    cJSON *r = csl_kube_patch(kube, &secret_res, ns, name, NULL, CSL_PATCH_APPLY, body, &po, &e);
    if (!r) {
        kerr("apply secret", &e);
        return -1;
    }
    cJSON_Delete(r);
    return 0;
}

/* A CloudServer: 2 cores, memory as given, 40Gi, debian-12 in hk-1a;
 * extra_spec is more spec members ("\"deletionPolicy\":\"Retain\"") or
 * NULL. Returns its uid (kept), or NULL with the error printed. */
static const char *create_cs(const char *ns, const char *name, const char *memory,
                             const char *extra_spec)
{
    char body[1024];
    snprintf(body, sizeof body,
             "{\"apiVersion\":\"cloudserver.dev/v1\",\"kind\":\"CloudServer\","
             "\"metadata\":{\"name\":\"%s\"},\"spec\":{\"cpu\":2,\"memory\":\"%s\","
             "\"disk\":\"40Gi\",\"image\":\"debian-12\",\"zone\":\"hk-1a\"%s%s}}",
             name, memory, extra_spec ? "," : "", extra_spec ? extra_spec : "");
    cJSON *o = cJSON_Parse(body);
    csl_kube_error e;
    cJSON *r = csl_kube_create(kube, &cs_res, ns, o, &e);
    cJSON_Delete(o);
    if (!r) {
        kerr("create CloudServer", &e);
        return NULL;
    }
    const char *uid = keeps(csl_kube_obj_uid(r));
    cJSON_Delete(r);
    return uid;
}

typedef bool (*cs_pred)(const cJSON *o, const void *arg);

static bool pred_ready(const cJSON *o, const void *arg)
{
    (void)arg;
    return cs_ready(o);
}

/* Polls the CloudServer until pred holds; returns it (kept), or NULL after
 * timeout_ms with the last one seen printed. */
static cJSON *wait_cs(const char *ns, const char *name, cs_pred pred, const void *arg,
                      long timeout_ms, const char *what)
{
    int64_t end = now_ms() + timeout_ms;
    cJSON *last = NULL;
    csl_kube_error e = {0};
    for (;;) {
        cJSON_Delete(last);
        last = csl_kube_get(kube, &cs_res, ns, name, NULL, &e);
        if (last && pred(last, arg)) return keepj(last);
        if (now_ms() >= end) break;
        mch_sleep_ms(POLL_MS);
    }
    fprintf(stderr, "\n  %s/%s: not %s within %ld ms\n", ns, name, what, timeout_ms);
    if (!last) kerr("last get", &e);
    print_obj("last seen", last);
    cJSON_Delete(last);
    return NULL;
}

/* Polls until the object is gone (404). */
static bool wait_cs_gone(const char *ns, const char *name, long timeout_ms)
{
    int64_t end = now_ms() + timeout_ms;
    for (;;) {
        csl_kube_error e;
        cJSON *o = csl_kube_get(kube, &cs_res, ns, name, NULL, &e);
        if (!o && e.code == CSL_KUBE_NOT_FOUND) return true;
        if (now_ms() >= end) {
            fprintf(stderr, "\n  %s/%s: still there after %ld ms\n", ns, name, timeout_ms);
            print_obj("last seen", o);
            cJSON_Delete(o);
            return false;
        }
        cJSON_Delete(o);
        mch_sleep_ms(POLL_MS);
    }
}

/* Polls until ns holds exactly n CloudServers, all Ready. */
static bool wait_all_ready(const char *ns, int n, long timeout_ms)
{
    int64_t end = now_ms() + timeout_ms;
    int count = 0, ready = 0;
    for (;;) {
        csl_kube_error e;
        cJSON *l = csl_kube_list_all(kube, &cs_res, ns, NULL, &e);
        count = ready = 0;
        const cJSON *o;
        cJSON_ArrayForEach(o, cJSON_GetObjectItem(l, "items"))
        {
            count++;
            ready += cs_ready(o);
        }
        if (l && count == n && ready == n) {
            cJSON_Delete(l);
            return true;
        }
        if (now_ms() >= end) {
            fprintf(stderr, "\n  %s: %d of %d CloudServers Ready (%d exist) after %ld ms\n", ns,
                    ready, n, count, timeout_ms);
            int shown = 0;
            cJSON_ArrayForEach(o, cJSON_GetObjectItem(l, "items"))
            {
                if (!cs_ready(o) && shown++ < 3) print_obj("not ready", o);
            }
            cJSON_Delete(l);
            return false;
        }
        cJSON_Delete(l);
        mch_sleep_ms(POLL_MS);
    }
}

/* Whether an Event with reason is recorded about object name in ns
 * (polled: the recorder writes asynchronously). */
static bool wait_event(const char *ns, const char *name, const char *reason, long timeout_ms)
{
    int64_t end = now_ms() + timeout_ms;
    for (;;) {
        csl_kube_error e;
        cJSON *l = csl_kube_list_all(kube, &event_res, ns, NULL, &e);
        const cJSON *ev;
        bool found = false;
        cJSON_ArrayForEach(ev, cJSON_GetObjectItem(l, "items"))
        {
            if (mch_streq(str_at(ev, "reason"), reason) &&
                mch_streq(str_at(ev, "regarding.name"), name))
                found = true;
        }
        cJSON_Delete(l);
        if (found) return true;
        if (now_ms() >= end) break;
        mch_sleep_ms(POLL_MS);
    }
    fprintf(stderr, "\n  no Event %s about %s/%s within %ld ms\n", reason, ns, name, timeout_ms);
    return false;
}

/* Removes our finalizers and deletes every object in ns, then ns itself:
 * the local plane has no namespace controller or garbage collector, and an
 * operator started later (a rerun on the same plane) must not find them. */
static void scrub_namespace(const char *ns)
{
    const csl_kube_resource *kinds[] = {&css_res, &cs_res};
    for (size_t k = 0; k < 2; k++) {
        csl_kube_error e;
        cJSON *l = csl_kube_list_all(kube, kinds[k], ns, NULL, &e);
        const cJSON *o;
        cJSON_ArrayForEach(o, cJSON_GetObjectItem(l, "items"))
        {
            const char *name = csl_kube_obj_name(o);
            cJSON *p = csl_kube_patch(kube, kinds[k], ns, name, NULL, CSL_PATCH_MERGE,
                                      "{\"metadata\":{\"finalizers\":null}}", NULL, &e);
            cJSON_Delete(p);
            csl_kube_delete(kube, kinds[k], ns, name, NULL, &e);
        }
        cJSON_Delete(l);
    }
    csl_kube_error e;
    csl_kube_delete(kube, &ns_res, NULL, ns, NULL, &e);
}

/* ------------------------------------------------------------ mockcloud helpers */

/* GET on mockcloud: the JSON reply, owned by the caller, or NULL. */
static cJSON *mc_json_owned(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static cJSON *mc_json_owned(const char *fmt, ...)
{
    char path[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(path, sizeof path, fmt, ap);
    va_end(ap);
    mch_resp *r = mch_get(env.mc, "%s", path);
    if (r->status != 200 || !r->json) {
        fprintf(stderr, "\n  GET %s: curl %d status %ld %.300s\n", path, (int)r->cc, r->status,
                r->body ? r->body : "");
        return NULL;
    }
    cJSON *j = r->json;
    r->json = NULL;
    return j;
}

#define mc_json(...) keepj(mc_json_owned(__VA_ARGS__))

/* A count from /_mock/journal/count?query, or -1. */
static double journal_count(const char *query)
{
    cJSON *c = mc_json_owned("/_mock/journal/count?%s", query);
    double n = num_at(c, "count", -1);
    cJSON_Delete(c);
    return n;
}

/* Every instance the cloud lists (all pages), as one array the caller
 * owns, or NULL. */
static cJSON *mc_all_instances(void)
{
    cJSON *all = cJSON_CreateArray();
    char token[256] = "";
    for (int page = 0; page < 100; page++) {
        cJSON *l = token[0] ? mc_json_owned("/v1/instances?limit=500&pageToken=%s", token)
                            : mc_json_owned("/v1/instances?limit=500");
        if (!l) {
            cJSON_Delete(all);
            return NULL;
        }
        const cJSON *it;
        cJSON_ArrayForEach(it, cJSON_GetObjectItem(l, "items"))
        {
            cJSON_AddItemToArray(all, cJSON_Duplicate(it, 1));
        }
        const char *next = str_at(l, "nextPageToken");
        bool more = next && *next;
        if (more) snprintf(token, sizeof token, "%s", next);
        cJSON_Delete(l);
        if (!more) break;
    }
    return all;
}

static bool live(const cJSON *inst)
{
    const char *st = str_at(inst, "state");
    return st && strcmp(st, "deleting") != 0 && strcmp(st, "deleted") != 0;
}

static const char *tag(const cJSON *inst, const char *key)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItem(inst, "tags"), key);
    return cJSON_IsString(t) ? t->valuestring : NULL;
}

/* Live instances tagged with uid; the last one's id into id (64) if given. */
static int live_for_uid(const char *uid, char *id)
{
    cJSON *l = mc_json_owned("/v1/instances?tag=" TAG_UID "=%s&limit=500", uid);
    if (!l) return -1;
    int n = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(l, "items"))
    {
        if (!mch_streq(tag(it, TAG_UID), uid) || !live(it)) continue;
        n++;
        if (id) snprintf(id, 64, "%s", str_at(it, "id") ? str_at(it, "id") : "");
    }
    cJSON_Delete(l);
    return n;
}

/* Live instances whose name tag says they belong to namespace ns. */
static int live_in_ns(const char *ns)
{
    cJSON *all = mc_all_instances();
    if (!all) return -1;
    size_t nl = strlen(ns);
    int n = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, all)
    {
        const char *name = tag(it, TAG_NAME);
        if (name && strncmp(name, ns, nl) == 0 && name[nl] == '/' && live(it)) n++;
    }
    cJSON_Delete(all);
    return n;
}

/* Polls until exactly want live instances carry uid. */
static bool wait_live_for_uid(const char *uid, int want, long timeout_ms)
{
    int64_t end = now_ms() + timeout_ms;
    int n;
    for (;;) {
        n = live_for_uid(uid, NULL);
        if (n == want) return true;
        if (now_ms() >= end) break;
        mch_sleep_ms(POLL_MS);
    }
    fprintf(stderr, "\n  uid %s: %d live instances, want %d (after %ld ms)\n", uid, n, want,
            timeout_ms);
    return false;
}

static bool wait_live_in_ns(const char *ns, int want, long timeout_ms)
{
    int64_t end = now_ms() + timeout_ms;
    int n;
    for (;;) {
        n = live_in_ns(ns);
        if (n == want) return true;
        if (now_ms() >= end) break;
        mch_sleep_ms(POLL_MS);
    }
    fprintf(stderr, "\n  namespace %s: %d live instances in the cloud, want %d (after %ld ms)\n",
            ns, n, want, timeout_ms);
    return false;
}

/* The journal's successful creates (kept items array). */
static cJSON *journal_creates(void)
{
    cJSON *j = mc_json("/_mock/journal?op=CreateInstance&status=2xx&limit=10000");
    if (j && num_at(j, "dropped", 0) > 0) fprintf(stderr, "\n  journal dropped entries\n");
    return j ? cJSON_GetObjectItem(j, "items") : NULL;
}

/* The contract's create rules, from the journal: every successful create
 * carried an Idempotency-Key; for each uid, creates that made an instance
 * (202) number exactly `made` and used keys "<uid>" or "<uid>-attempt-N",
 * all different. */
static bool creates_keyed(const char *const *uids, int n, int made)
{
    cJSON *items = journal_creates();
    if (!items) return false;
    bool ok = true;
    const cJSON *e;
    int keyless = 0;
    cJSON_ArrayForEach(e, items)
    {
        const char *k = str_at(e, "idempotencyKey");
        if (!k || !*k) keyless++;
    }
    if (keyless) {
        fprintf(stderr, "\n  %d successful CreateInstance calls without an Idempotency-Key\n",
                keyless);
        ok = false;
    }
    for (int i = 0; i < n; i++) {
        size_t ul = strlen(uids[i]);
        int created = 0;
        const char *keys[16];
        cJSON_ArrayForEach(e, items)
        {
            const char *k = str_at(e, "idempotencyKey");
            if (!k || strncmp(k, uids[i], ul) != 0) continue;
            const char *sfx = k + ul;
            if (*sfx && (strncmp(sfx, "-attempt-", 9) != 0 || !sfx[9] ||
                         strspn(sfx + 9, "0123456789") != strlen(sfx + 9))) {
                fprintf(stderr, "\n  create key %s is neither <uid> nor <uid>-attempt-N\n", k);
                ok = false;
                continue;
            }
            if (num_at(e, "status", 0) != 202) continue;
            for (int j = 0; j < created && j < 16; j++) {
                if (strcmp(keys[j], k) == 0) {
                    fprintf(stderr, "\n  key %s made two instances\n", k);
                    ok = false;
                }
            }
            if (created < 16) keys[created] = k;
            created++;
        }
        if (created != made) {
            fprintf(stderr, "\n  uid %s: %d creates made an instance, want %d\n", uids[i], created,
                    made);
            ok = false;
        }
    }
    return ok;
}

/* Polls /_mock/stats until no request is parked (injected latency). */
static bool wait_no_parked(long timeout_ms)
{
    int64_t end = now_ms() + timeout_ms;
    for (;;) {
        cJSON *s = mc_json_owned("/_mock/stats");
        double parked = num_at(s, "suspended", -1);
        cJSON_Delete(s);
        if (parked == 0) return true;
        if (now_ms() >= end) break;
        mch_sleep_ms(POLL_MS);
    }
    fprintf(stderr, "\n  mockcloud still holds parked requests after %ld ms\n", timeout_ms);
    return false;
}

/* ------------------------------------------------------------ set-up */

static int apply_crds(void)
{
    int rc = kt_apply_crds(kube, FM);
    /* Established, and the resources answer (discovery catches up). */
    int64_t end = now_ms() + 60000;
    while (rc == 0) {
        csl_kube_error e1, e2;
        cJSON *a = csl_kube_list(kube, &cs_res, env.sys_ns, NULL, &e1);
        cJSON *b = csl_kube_list(kube, &css_res, env.sys_ns, NULL, &e2);
        bool ok = a && b;
        cJSON_Delete(a);
        cJSON_Delete(b);
        if (ok) return 0;
        if (now_ms() >= end) {
            fprintf(stderr, "the CloudServer CRDs did not become ready within 60 s\n");
            return -1;
        }
        mch_sleep_ms(200);
    }
    return rc;
}

static void free_kube(void)
{
    csl_kube_free(kube);
    kube = NULL;
    csl_kube_config_free(&kcfg);
}

static int common_init(void)
{
    if (!kube) {
        csl_log_setup("test_kube_operator", CSL_LOG_WARN, CSL_LOG_TEXT, 2);
        kubeconfig = getenv("CSL_KUBECONFIG");
        csl_kube_options opt = {.user_agent = FM};
        if (kt_connect(&opt, &kcfg, &kube) != 0) return -1;
        run_id = (unsigned)((getpid() * 7919u + (unsigned)(csl_wall_ms() % 100000)) % 1000000u);
        oph_init();
        atexit(free_kube); /* after the harness's: runs before curl_global_cleanup */
    }
    return 0;
}

/* Not inlined: gcc's -Wrestrict otherwise sees the harness's paths in one
 * static array and warns about an overlap that cannot happen. */
__attribute__((noinline)) static int start_mockcloud(mch_server *s, const char *config,
                                                     const char *const *extra)
{
    return mch_start_with_config(s, config, extra);
}

/* A suite's world: the system namespace with the credentials Secret
 * (holding token) and a running mockcloud with config that knows only
 * TOKEN_GOOD. Operators are the suite's to start. On failure CUnit skips
 * the suite's clean-up; the harnesses' atexit hooks kill what runs. */
static int suite_env_init(const char *label, const char *token, const char *mc_config)
{
    if (common_init() != 0) return -1;
    memset(&env, 0, sizeof env);
    snprintf(env.sys_ns, sizeof env.sys_ns, "op-%s-sys-%u", label, run_id);
    if (make_namespace(env.sys_ns) != 0) return -1;
    snprintf(env.ns[env.n_ns++], 64, "op-%s-sys-%u", label, run_id);
    if (!crds_ready) {
        if (apply_crds() != 0) return -1;
        crds_ready = true;
    }
    if (put_secret(env.sys_ns, "cloud-credentials", token) != 0) return -1;
    snprintf(env.secret_arg, sizeof env.secret_arg, "%s/cloud-credentials", env.sys_ns);
    env.mc = mch_new(NULL);
    const char *const mc_args[] = {"--token", TOKEN_GOOD, "--seed", "7", NULL};
    if (!env.mc || start_mockcloud(env.mc, mc_config, mc_args) != 0) return -1;
    env.mc->token = TOKEN_GOOD;
    snprintf(env.endpoint, sizeof env.endpoint, "%s", env.mc->base);
    return 0;
}

/* Starts operator slot i with the suite's standard flags and extra ones. */
static int start_operator(int i, const char *label, const char *const *extra,
                          const char *const *environ_add)
{
    if (!env.op[i]) env.op[i] = oph_new(label);
    if (!env.op[i]) return -1;
    const char *args[40] = {"--kubeconfig",
                            kubeconfig,
                            "--cloud-endpoint",
                            env.endpoint,
                            "--cloud-credentials-secret",
                            env.secret_arg,
                            "--cloud-timeout",
                            "10s",
                            NULL};
    int n = 8;
    for (int k = 0; extra && extra[k] && n < 39; k++) args[n++] = extra[k];
    args[n] = NULL;
    return oph_start(env.op[i], args, environ_add);
}

/* Kills what still runs (a failed test), scrubs the namespaces. */
static int suite_env_cleanup(void)
{
    oph_teardown();
    for (int i = env.n_ns - 1; i >= 0; i--) scrub_namespace(env.ns[i]);
    mch_teardown();
    kept_free();
    memset(&env, 0, sizeof env);
    return 0;
}

static void test_setup(void)
{
    failures_at_start = CU_get_number_of_failures();
}

/* On a failure, what the processes said; then frees the test's trees. */
static void test_teardown(void)
{
    if (CU_get_number_of_failures() != failures_at_start) {
        fprintf(stderr, "\n");
        for (int i = 0; i < 2; i++)
            if (env.op[i] && env.op[i]->used) oph_check_stderr(env.op[i], true);
        if (env.mc && env.mc->pid > 0) mch_check_stderr(env.mc, true);
    }
    kept_free();
}

/* The suite's last case: SIGTERM both, exit 0, no sanitizer report. */
static void test_clean_stop(void)
{
    for (int i = 0; i < 2; i++) {
        if (!env.op[i] || env.op[i]->pid <= 0) continue;
        CU_ASSERT(oph_stop(env.op[i]) == 0);
    }
    if (env.mc && env.mc->pid > 0) CU_ASSERT(mch_stop(env.mc) == 0);
}

/* ------------------------------------------------------------ suite: operator */

#define FAST_CLOUD MCH_FAST_CLOUD

static int operator_init(void)
{
    if (suite_env_init("main", TOKEN_GOOD, FAST_CLOUD) != 0) return -1;
    return start_operator(0, "main", NULL, NULL);
}

static void test_concurrent_creates(void)
{
    const char *ns = case_ns("create");
    CU_ASSERT_FATAL(ns != NULL);
    const char *uids[10];
    char name[10][32];
    for (int i = 0; i < 10; i++) {
        snprintf(name[i], sizeof name[i], "web-%d", i);
        uids[i] = create_cs(ns, name[i], "4Gi", NULL);
        CU_ASSERT_FATAL(uids[i] != NULL);
    }
    CU_ASSERT_FATAL(wait_all_ready(ns, 10, 90000));

    for (int i = 0; i < 10; i++) {
        csl_kube_error e;
        cJSON *o = kget(&cs_res, ns, name[i], &e);
        CU_ASSERT_FATAL(o != NULL);
        CU_ASSERT(has_finalizer(o));
        char id[64] = "";
        CU_ASSERT_EQUAL(live_for_uid(uids[i], id), 1);
        CU_ASSERT_STRING_EQUAL(id, str_at(o, "status.instanceID"));
        cJSON *inst = mc_json("/v1/instances/%s", id);
        CU_ASSERT_FATAL(inst != NULL);
        CU_ASSERT_STRING_EQUAL(str_at(inst, "state"), "running");
        char want[128];
        snprintf(want, sizeof want, "%s/%s", ns, name[i]);
        CU_ASSERT(mch_streq(tag(inst, TAG_NAME), want));
        CU_ASSERT_EQUAL(num_at(inst, "cpu", 0), 2);
        CU_ASSERT_EQUAL(num_at(inst, "memoryMiB", 0), 4096);
        CU_ASSERT_EQUAL(num_at(inst, "diskGiB", 0), 40);
        CU_ASSERT(mch_streq(str_at(o, "status.zone"), "hk-1a"));
        CU_ASSERT(cJSON_GetArraySize(at(o, "status.ipAddresses")) == 1);
        CU_ASSERT(cond_is(o, "Synced", "True"));
        CU_ASSERT(cond_is(o, "CloudReachable", "True"));
        CU_ASSERT(cond_is(o, "CloudAuthorized", "True"));
    }
    CU_ASSERT_EQUAL(live_in_ns(ns), 10);
    CU_ASSERT(creates_keyed(uids, 10, 1));
}

static void test_resize(void)
{
    const char *ns = case_ns("resize");
    CU_ASSERT_FATAL(ns != NULL);
    const char *uid = create_cs(ns, "db", "4Gi", NULL);
    CU_ASSERT_FATAL(uid != NULL);
    cJSON *o = wait_cs(ns, "db", pred_ready, NULL, 60000, "Ready");
    CU_ASSERT_FATAL(o != NULL);
    const char *id = keeps(str_at(o, "status.instanceID"));

    csl_kube_error e;
    cJSON *p = keepj(csl_kube_patch(kube, &cs_res, ns, "db", NULL, CSL_PATCH_MERGE,
                                    "{\"spec\":{\"memory\":\"8Gi\",\"cpu\":4}}", NULL, &e));
    if (!p) kerr("patch", &e);
    CU_ASSERT_FATAL(p != NULL);
    CU_ASSERT_EQUAL_FATAL(num_at(p, "metadata.generation", 0), 2);

    o = wait_cs(ns, "db", pred_ready, NULL, 60000, "Ready at generation 2");
    CU_ASSERT_FATAL(o != NULL);
    CU_ASSERT_EQUAL(num_at(o, "status.observedGeneration", 0), 2);
    CU_ASSERT_STRING_EQUAL(str_at(o, "status.instanceID"), id); /* resized, not replaced */
    cJSON *inst = mc_json("/v1/instances/%s", id);
    CU_ASSERT_FATAL(inst != NULL);
    CU_ASSERT_STRING_EQUAL(str_at(inst, "state"), "running");
    CU_ASSERT_EQUAL(num_at(inst, "memoryMiB", 0), 8192);
    CU_ASSERT_EQUAL(num_at(inst, "cpu", 0), 4);
    CU_ASSERT_EQUAL(live_for_uid(uid, NULL), 1);
    CU_ASSERT(journal_count("op=ResizeInstance&status=202") >= 1);
}

/* Crashes the object's instance through mockcloud and reports whether the
 * operator failed over within timeout_ms: a new running instance in
 * status, failoverCount 1, the crashed one deleted, one live instance for
 * the uid, Event FailedOver. Asserts nothing itself (see the mutation
 * suite). */
static bool crash_and_check_failover(const char *ns, const char *name, const char *uid,
                                     long timeout_ms)
{
    csl_kube_error e;
    cJSON *o = kget(&cs_res, ns, name, &e);
    const char *old = o ? keeps(str_at(o, "status.instanceID")) : NULL;
    if (!old) return false;
    char body[256];
    snprintf(body, sizeof body, "{\"ids\":[\"%s\"]}", old);
    mch_resp *r = mch_send(env.mc, "POST", body, "/_mock/chaos/crash");
    if (r->status != 200 || cJSON_GetArraySize(at(r->json, "crashed")) != 1) {
        fprintf(stderr, "\n  crash %s: %ld %s\n", old, r->status, r->body);
        return false;
    }
    int64_t end = now_ms() + timeout_ms;
    cJSON *last = NULL;
    bool ok = false;
    for (;;) {
        cJSON_Delete(last);
        last = csl_kube_get(kube, &cs_res, ns, name, NULL, &e);
        const char *id = str_at(last, "status.instanceID");
        if (last && cs_ready(last) && id && strcmp(id, old) != 0) {
            ok = true;
            break;
        }
        if (now_ms() >= end) break;
        mch_sleep_ms(POLL_MS);
    }
    if (!ok) {
        fprintf(stderr, "\n  %s/%s: no failover from crashed %s within %ld ms\n", ns, name, old,
                timeout_ms);
        print_obj("last seen", last);
        cJSON_Delete(last);
        return false;
    }
    keepj(last);
    if (num_at(last, "status.failoverCount", 0) != 1) {
        fprintf(stderr, "\n  failoverCount %g, want 1\n", num_at(last, "status.failoverCount", 0));
        ok = false;
    }
    const char *id = str_at(last, "status.instanceID");
    cJSON *inst = mc_json("/v1/instances/%s", id);
    if (!inst || !mch_streq(str_at(inst, "state"), "running") ||
        !mch_streq(tag(inst, TAG_UID), uid)) {
        fprintf(stderr, "\n  the replacement %s is not a running instance tagged with the uid\n",
                id);
        ok = false;
    }
    if (!wait_live_for_uid(uid, 1, 30000)) ok = false;
    if (!wait_event(ns, name, "FailedOver", 30000)) ok = false;
    return ok;
}

static void test_failover(void)
{
    const char *ns = case_ns("failover");
    CU_ASSERT_FATAL(ns != NULL);
    const char *uid = create_cs(ns, "app", "4Gi", NULL);
    CU_ASSERT_FATAL(uid != NULL);
    CU_ASSERT_FATAL(wait_cs(ns, "app", pred_ready, NULL, 60000, "Ready") != NULL);
    CU_ASSERT(crash_and_check_failover(ns, "app", uid, 60000));
}

/* Deletes a Ready object and checks what the deletion policy promises. */
static void delete_case(const char *label, bool retain)
{
    const char *ns = case_ns(label);
    CU_ASSERT_FATAL(ns != NULL);
    const char *uid = create_cs(ns, "box", "4Gi", retain ? "\"deletionPolicy\":\"Retain\"" : NULL);
    CU_ASSERT_FATAL(uid != NULL);
    cJSON *o = wait_cs(ns, "box", pred_ready, NULL, 60000, "Ready");
    CU_ASSERT_FATAL(o != NULL);
    CU_ASSERT(has_finalizer(o));
    const char *id = keeps(str_at(o, "status.instanceID"));

    csl_kube_error e;
    CU_ASSERT_FATAL(csl_kube_delete(kube, &cs_res, ns, "box", NULL, &e) == 0);
    CU_ASSERT_FATAL(wait_cs_gone(ns, "box", 60000));
    /* The finalizer went only after the cloud was done: check at once. */
    mch_resp *r = mch_get(env.mc, "/v1/instances/%s", id);
    if (retain) {
        CU_ASSERT_EQUAL(r->status, 200);
        CU_ASSERT(mch_streq(str_at(r->json, "state"), "running"));
        CU_ASSERT_PTR_NULL(tag(r->json, TAG_UID));
        CU_ASSERT_PTR_NULL(tag(r->json, TAG_NAME));
        CU_ASSERT_EQUAL(live_for_uid(uid, NULL), 0); /* untagged: no longer ours */
    } else {
        if (r->status != 404)
            fprintf(stderr, "\n  instance %s after the object went: %ld %.300s\n", id, r->status,
                    r->body);
        CU_ASSERT_EQUAL(r->status, 404);
        CU_ASSERT_EQUAL(live_for_uid(uid, NULL), 0);
    }
}

static void test_delete_policy_delete(void)
{
    delete_case("del", false);
}

static void test_delete_policy_retain(void)
{
    delete_case("retain", true);
}

static bool pred_unreachable(const cJSON *o, const void *arg)
{
    (void)arg;
    return cond_is(o, "CloudReachable", "False");
}

static void test_outage_recovery(void)
{
    const char *ns = case_ns("outage");
    CU_ASSERT_FATAL(ns != NULL);
    double n503 = journal_count("status=503");
    CU_ASSERT_FATAL(n503 >= 0);
    mch_resp *r =
        mch_send(env.mc, "POST", "{\"mode\":\"503\",\"duration\":\"5s\"}", "/_mock/outage");
    CU_ASSERT_EQUAL_FATAL(r->status, 201);
    int64_t outage_end = now_ms() + 5000;
    const char *uids[3];
    const char *names[3] = {"o-0", "o-1", "o-2"};
    for (int i = 0; i < 3; i++) {
        uids[i] = create_cs(ns, names[i], "4Gi", NULL);
        CU_ASSERT_FATAL(uids[i] != NULL);
    }
    /* The operator met the outage and said so. */
    cJSON *o = wait_cs(ns, "o-0", pred_unreachable, NULL, 10000, "CloudReachable=False");
    CU_ASSERT(o != NULL);
    if (o) CU_ASSERT(!cs_ready(o));
    CU_ASSERT(now_ms() < outage_end + 2000); /* seen during the outage, not long after */
    CU_ASSERT_FATAL(wait_all_ready(ns, 3, 90000));
    CU_ASSERT(journal_count("status=503") > n503);
    for (int i = 0; i < 3; i++) {
        csl_kube_error e;
        cJSON *x = kget(&cs_res, ns, names[i], &e);
        CU_ASSERT(cond_is(x, "CloudReachable", "True"));
        CU_ASSERT_EQUAL(live_for_uid(uids[i], NULL), 1);
    }
    CU_ASSERT(creates_keyed(uids, 3, 1));
}

/* ---- CloudServerSet */

static bool set_status_is(const char *ns, const char *name, int replicas, int ready)
{
    csl_kube_error e;
    cJSON *s = csl_kube_get(kube, &css_res, ns, name, NULL, &e);
    bool ok = s && num_at(s, "status.replicas", -1) == replicas &&
              num_at(s, "status.readyReplicas", -1) == ready &&
              num_at(s, "status.observedGeneration", -1) == num_at(s, "metadata.generation", -2);
    cJSON_Delete(s);
    return ok;
}

/* Polls until the set has exactly n members, all Ready and owned by it,
 * its status says n/n, and the cloud has n live instances in ns. */
static bool wait_set(const char *ns, const char *set, const char *set_uid, int n, long timeout_ms)
{
    int64_t end = now_ms() + timeout_ms;
    int count = 0, ready = 0;
    for (;;) {
        csl_kube_list_opts lo = {.label_selector = "app=edge"};
        csl_kube_error le;
        cJSON *l = csl_kube_list_all(kube, &cs_res, ns, &lo, &le);
        count = ready = 0;
        const cJSON *o;
        cJSON_ArrayForEach(o, cJSON_GetObjectItem(l, "items"))
        {
            count++;
            ready += cs_ready(o);
        }
        if (count == n && ready == n && set_status_is(ns, set, n, n) && live_in_ns(ns) == n) {
            bool owned = true;
            cJSON_ArrayForEach(o, cJSON_GetObjectItem(l, "items"))
            {
                const cJSON *ref = cJSON_GetArrayItem(at(o, "metadata.ownerReferences"), 0);
                const char *nm = csl_kube_obj_name(o);
                size_t sl = strlen(set);
                if (!mch_streq(str_at(ref, "uid"), set_uid) ||
                    !cJSON_IsTrue(cJSON_GetObjectItem(ref, "controller")) ||
                    !mch_streq(str_at(ref, "kind"), "CloudServerSet") ||
                    strncmp(nm, set, sl) != 0 || nm[sl] != '-') {
                    fprintf(stderr, "\n  member %s is not owned by the set as it should be\n", nm);
                    owned = false;
                }
            }
            cJSON_Delete(l);
            return owned;
        }
        cJSON_Delete(l);
        if (now_ms() >= end) break;
        mch_sleep_ms(POLL_MS);
    }
    csl_kube_error e;
    cJSON *s = kget(&css_res, ns, set, &e);
    fprintf(stderr, "\n  set %s/%s: %d members, %d Ready, want %d (after %ld ms); cloud: %d live\n",
            ns, set, count, ready, n, timeout_ms, live_in_ns(ns));
    print_obj("the set", s);
    return false;
}

static void test_set_scale(void)
{
    const char *ns = case_ns("set");
    CU_ASSERT_FATAL(ns != NULL);
    const char *body =
        "{\"apiVersion\":\"cloudserver.dev/v1\",\"kind\":\"CloudServerSet\","
        "\"metadata\":{\"name\":\"edge\"},\"spec\":{\"replicas\":3,"
        "\"selector\":{\"matchLabels\":{\"app\":\"edge\"}},"
        "\"template\":{\"metadata\":{\"labels\":{\"app\":\"edge\"}},"
        "\"spec\":{\"cpu\":1,\"memory\":\"1Gi\",\"disk\":\"20Gi\",\"image\":\"debian-12\","
        "\"zone\":\"hk-1b\"}}}}";
    cJSON *o = cJSON_Parse(body);
    csl_kube_error e;
    cJSON *set = keepj(csl_kube_create(kube, &css_res, ns, o, &e));
    cJSON_Delete(o);
    if (!set) kerr("create set", &e);
    CU_ASSERT_FATAL(set != NULL);
    const char *set_uid = keeps(csl_kube_obj_uid(set));

    CU_ASSERT_FATAL(wait_set(ns, "edge", set_uid, 3, 90000));
    cJSON *s = kget(&css_res, ns, "edge", &e);
    CU_ASSERT(mch_streq(str_at(s, "status.selector"), "app=edge"));

    /* As kubectl scale does: through the scale subresource. */
    cJSON *sc = keepj(csl_kube_patch(kube, &css_res, ns, "edge", "scale", CSL_PATCH_MERGE,
                                     "{\"spec\":{\"replicas\":6}}", NULL, &e));
    if (!sc) kerr("scale to 6", &e);
    CU_ASSERT_FATAL(sc != NULL);
    CU_ASSERT_FATAL(wait_set(ns, "edge", set_uid, 6, 90000));

    sc = keepj(csl_kube_patch(kube, &css_res, ns, "edge", "scale", CSL_PATCH_MERGE,
                              "{\"spec\":{\"replicas\":2}}", NULL, &e));
    if (!sc) kerr("scale to 2", &e);
    CU_ASSERT_FATAL(sc != NULL);
    CU_ASSERT_FATAL(wait_set(ns, "edge", set_uid, 2, 90000));
    sc = kget(&css_res, ns, "edge", &e);
    cJSON *scale = keepj(csl_kube_get(kube, &css_res, ns, "edge", "scale", &e));
    CU_ASSERT_FATAL(scale != NULL);
    CU_ASSERT_EQUAL(num_at(scale, "spec.replicas", -1), 2);
    CU_ASSERT_EQUAL(num_at(scale, "status.replicas", -1), 2);
    CU_ASSERT(mch_streq(str_at(scale, "status.selector"), "app=edge"));

    /* Deleting the set takes its members and their instances with it,
     * though the local plane runs no garbage collector. */
    CU_ASSERT_FATAL(csl_kube_delete(kube, &css_res, ns, "edge", NULL, &e) == 0);
    int64_t end = now_ms() + 90000;
    int left = -1;
    bool set_gone = false;
    while (now_ms() < end) {
        cJSON *l = csl_kube_list_all(kube, &cs_res, ns, NULL, &e);
        left = l ? cJSON_GetArraySize(cJSON_GetObjectItem(l, "items")) : -1;
        cJSON_Delete(l);
        cJSON *g = csl_kube_get(kube, &css_res, ns, "edge", NULL, &e);
        set_gone = !g && e.code == CSL_KUBE_NOT_FOUND;
        cJSON_Delete(g);
        if (left == 0 && set_gone) break;
        mch_sleep_ms(POLL_MS);
    }
    if (left != 0 || !set_gone)
        fprintf(stderr, "\n  after deleting the set: %d members left, set %s\n", left,
                set_gone ? "gone" : "still there");
    CU_ASSERT_EQUAL(left, 0);
    CU_ASSERT(set_gone);
    CU_ASSERT(wait_live_in_ns(ns, 0, 30000));
}

static void test_metrics_and_probes(void)
{
    oph_operator *op = env.op[0];
    CU_ASSERT_FATAL(op && oph_alive(op));
    mch_resp *r = oph_get(op, true, "/healthz");
    CU_ASSERT_EQUAL(r->status, 200);
    r = oph_get(op, true, "/readyz");
    CU_ASSERT_EQUAL(r->status, 200);
    r = oph_get(op, false, "/metrics");
    CU_ASSERT_EQUAL_FATAL(r->status, 200);
    const char *body = r->body;
    CU_ASSERT(mch_metric_sum(body, "controller_runtime_reconcile_total{") > 0);
    CU_ASSERT(mch_metric_sum(body, "controller_runtime_max_concurrent_reconciles{") > 0);
    CU_ASSERT(mch_metric_sum(body, "cloudserver_cloud_api_requests_total{") > 0);
    CU_ASSERT(mch_metric_sum(body, "cloudserver_failovers_total") >= 1);
    CU_ASSERT(mch_metric_sum(body, "cloudserver_create_to_ready_seconds_count") >= 10);
    CU_ASSERT(mch_metric_sum(body, "process_resident_memory_bytes") > 0);
}

/* ------------------------------------------------------------ suite: features */

/* Its own mockcloud and operator (with fallback zones), because its cases
 * change the cloud's capacity and timings. */
static int features_init(void)
{
    if (suite_env_init("feat", TOKEN_GOOD, FAST_CLOUD) != 0) return -1;
    const char *const extra[] = {"--zones", "hk-1b,hk-2a", NULL};
    return start_operator(0, "features", extra, NULL);
}

static bool pred_authorized_reason(const cJSON *o, const void *arg)
{
    return cond_is(o, "CloudAuthorized", "False") &&
           mch_streq(str_at(condition(o, "CloudAuthorized"), "reason"), arg);
}

/* spec.credentialsSecretRef: the object's own Secret, in its namespace,
 * overrides the operator's (which holds the good token here). */
static void test_credentials_secret_ref(void)
{
    const char *ns = case_ns("credref");
    CU_ASSERT_FATAL(ns != NULL);
    const char *uid =
        create_cs(ns, "tenant", "4Gi", "\"credentialsSecretRef\":{\"name\":\"tenant-creds\"}");
    CU_ASSERT_FATAL(uid != NULL);
    /* no such Secret: a condition and an Event, not an exit */
    cJSON *o = wait_cs(ns, "tenant", pred_authorized_reason, "CredentialsMissing", 30000,
                       "CloudAuthorized=False CredentialsMissing");
    CU_ASSERT_FATAL(o != NULL);
    CU_ASSERT(strstr(str_at(condition(o, "CloudAuthorized"), "message"), "tenant-creds") != NULL);
    CU_ASSERT(wait_event(ns, "tenant", "CredentialsMissing", 30000));
    CU_ASSERT_EQUAL(live_for_uid(uid, NULL), 0);
    pid_t pid = env.op[0]->pid;
    double n401 = journal_count("status=401");

    /* a token the cloud refuses: the object's Secret is what is used */
    CU_ASSERT_FATAL(put_secret(ns, "tenant-creds", TOKEN_BAD) == 0);
    o = wait_cs(ns, "tenant", pred_authorized_reason, "Unauthorized", 30000,
                "CloudAuthorized=False Unauthorized");
    CU_ASSERT_FATAL(o != NULL);
    CU_ASSERT(journal_count("status=401") > n401);
    CU_ASSERT_EQUAL(live_for_uid(uid, NULL), 0);

    /* fixed in the Secret: the same process picks it up */
    CU_ASSERT_FATAL(put_secret(ns, "tenant-creds", TOKEN_GOOD) == 0);
    o = wait_cs(ns, "tenant", pred_ready, NULL, 30000, "Ready after the Secret was fixed");
    CU_ASSERT_FATAL(o != NULL);
    CU_ASSERT(cond_is(o, "CloudAuthorized", "True"));
    CU_ASSERT(oph_alive(env.op[0]) && env.op[0]->pid == pid);
    CU_ASSERT_EQUAL(live_for_uid(uid, NULL), 1);
}

/* The spec zone out of capacity (limit 0) when a crashed instance is
 * replaced: the replacement goes to the next --zones zone of the region
 * (hk-1b; hk-2a is another region and never used). */
static void test_zone_fallback(void)
{
    const char *ns = case_ns("zones");
    CU_ASSERT_FATAL(ns != NULL);
    const char *uid = create_cs(ns, "edge", "4Gi", NULL);
    CU_ASSERT_FATAL(uid != NULL);
    cJSON *o = wait_cs(ns, "edge", pred_ready, NULL, 60000, "Ready");
    CU_ASSERT_FATAL(o != NULL);
    CU_ASSERT(mch_streq(str_at(o, "status.zone"), "hk-1a"));
    const char *old = keeps(str_at(o, "status.instanceID"));
    CU_ASSERT_FATAL(old != NULL);

    mch_resp *r = mch_send(env.mc, "PUT", "{\"zones\":{\"hk-1a\":0}}", "/_mock/capacity");
    CU_ASSERT_FATAL(r->status == 200 || r->status == 204);
    char body[256];
    snprintf(body, sizeof body, "{\"ids\":[\"%s\"]}", old);
    r = mch_send(env.mc, "POST", body, "/_mock/chaos/crash");
    CU_ASSERT_FATAL(r->status == 200);

    int64_t end = now_ms() + 60000;
    cJSON *last = NULL;
    csl_kube_error e;
    for (;;) {
        cJSON_Delete(last);
        last = csl_kube_get(kube, &cs_res, ns, "edge", NULL, &e);
        const char *id = str_at(last, "status.instanceID");
        if (last && cs_ready(last) && id && strcmp(id, old) != 0) break;
        if (now_ms() >= end) {
            print_obj("no failover to another zone; last seen", last);
            break;
        }
        mch_sleep_ms(POLL_MS);
    }
    o = keepj(last);
    CU_ASSERT_FATAL(o != NULL && cs_ready(o));
    CU_ASSERT(mch_streq(str_at(o, "status.zone"), "hk-1b"));
    CU_ASSERT_EQUAL(num_at(o, "status.failoverCount", 0), 1);
    cJSON *inst = mc_json("/v1/instances/%s", str_at(o, "status.instanceID"));
    CU_ASSERT_FATAL(inst != NULL);
    CU_ASSERT(mch_streq(str_at(inst, "zone"), "hk-1b"));
    CU_ASSERT(mch_streq(str_at(inst, "state"), "running"));
    CU_ASSERT(wait_event(ns, "edge", "ZoneFallback", 30000));
    CU_ASSERT(journal_count("op=CreateInstance&status=409") >= 1);
    CU_ASSERT(wait_live_for_uid(uid, 1, 30000));

    r = mch_send(env.mc, "PUT", "{\"zones\":{\"hk-1a\":null}}", "/_mock/capacity");
    CU_ASSERT(r->status == 200 || r->status == 204);
}

static bool pred_backed_up(const cJSON *o, const void *arg)
{
    (void)arg;
    return str_at(o, "status.backups.lastSuccessfulTime") &&
           cJSON_GetArraySize(at(o, "status.backups.snapshots")) == 1;
}

/* Snapshots of the object's instance in the cloud, available or not. */
static int snapshots_of(const char *instance)
{
    cJSON *l = mc_json_owned("/v1/snapshots?instance=%s", instance);
    int n = cJSON_GetArraySize(cJSON_GetObjectItem(l, "items"));
    cJSON_Delete(l);
    return n;
}

/* A "* * * * *" schedule with retain 1. Waiting for minute boundaries
 * would take up to two minutes, so the case makes the operator find
 * missed start times instead: an older snapshot of ours is put in the
 * cloud and status.backups.lastScheduleTime is set three minutes back (as
 * after an operator outage). One snapshot is taken, for the latest missed
 * time (CronJob's rule), and retention deletes the older one. */
static void test_scheduled_backup(void)
{
    const char *ns = case_ns("backup");
    CU_ASSERT_FATAL(ns != NULL);
    const char *uid =
        create_cs(ns, "vault", "4Gi", "\"backup\":{\"schedule\":\"* * * * *\",\"retain\":1}");
    CU_ASSERT_FATAL(uid != NULL);
    cJSON *o = wait_cs(ns, "vault", pred_ready, NULL, 60000, "Ready");
    CU_ASSERT_FATAL(o != NULL);
    const char *id = keeps(str_at(o, "status.instanceID"));
    CU_ASSERT_FATAL(id != NULL);

    char body[512];
    snprintf(body, sizeof body,
             "{\"name\":\"older\",\"tags\":{\"" TAG_UID "\":\"%s\",\"" TAG_NAME "\":\"%s/vault\"}}",
             uid, ns);
    mch_resp *r = mch_send(env.mc, "POST", body, "/v1/instances/%s/snapshots", id);
    CU_ASSERT_FATAL(r->status == 202 || r->status == 201 || r->status == 200);
    const char *older = keeps(str_at(r->json, "id"));
    CU_ASSERT_FATAL(older != NULL);
    mch_sleep_ms(300); /* available (50 ms), and older than what comes next */

    char t[CSL_RFC3339_LEN], patch[256];
    csl_rfc3339_s(csl_wall_ms() - 3 * 60 * 1000, t);
    snprintf(patch, sizeof patch, "{\"status\":{\"backups\":{\"lastScheduleTime\":\"%s\"}}}", t);
    csl_kube_error e;
    cJSON *p = keepj(
        csl_kube_patch(kube, &cs_res, ns, "vault", "status", CSL_PATCH_MERGE, patch, NULL, &e));
    if (!p) kerr("patch status", &e);
    CU_ASSERT_FATAL(p != NULL);

    CU_ASSERT(wait_event(ns, "vault", "SnapshotStarted", 90000));
    CU_ASSERT(wait_event(ns, "vault", "SnapshotPruned", 30000));
    o = wait_cs(ns, "vault", pred_backed_up, NULL, 30000, "backed up, one snapshot kept");
    CU_ASSERT_FATAL(o != NULL);
    const char *left = str_at(at(o, "status.backups.snapshots")->child, "id");
    CU_ASSERT(left && strcmp(left, older) != 0);
    CU_ASSERT(str_at(o, "status.backups.lastScheduleTime") &&
              strcmp(str_at(o, "status.backups.lastScheduleTime"), t) > 0);
    r = mch_get(env.mc, "/v1/snapshots/%s", older);
    CU_ASSERT_EQUAL(r->status, 404); /* pruned */
    /* The schedule fires every minute, so the case can cross a minute
     * boundary: then a second snapshot is being taken and the older one is
     * pruned once it is available. The cloud must come back to `retain`. */
    int n = snapshots_of(id);
    for (int i = 0; i < 100 && n != 1; i++) {
        mch_sleep_ms(100);
        n = snapshots_of(id);
    }
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT(cs_ready(o));
}

static bool pred_failed_timeout(const cJSON *o, const void *arg)
{
    (void)arg;
    return mch_streq(str_at(o, "status.phase"), "Failed") &&
           mch_streq(str_at(condition(o, "Ready"), "reason"), "ProvisioningTimeout");
}

/* spec.timeouts.create 2s (the CRD's floor is 1s) against a cloud whose
 * creates take a minute: the stuck instance is deleted and replaced once
 * (maxAttempts 1), the replacement is stuck too, and the operator gives
 * up: Ready=False ProvisioningTimeout, phase Failed, the last instance
 * kept. */
static void test_provisioning_timeout(void)
{
    const char *ns = case_ns("stuck");
    CU_ASSERT_FATAL(ns != NULL);
    mch_resp *r = mch_send(env.mc, "PUT", "{\"create\":\"60s\"}", "/_mock/timings");
    CU_ASSERT_FATAL(r->status == 200 || r->status == 204);
    const char *uid = create_cs(ns, "slow", "4Gi",
                                "\"timeouts\":{\"create\":\"2s\"},"
                                "\"failover\":{\"enabled\":true,\"maxAttempts\":1}");
    CU_ASSERT(uid != NULL);
    cJSON *o = uid ? wait_cs(ns, "slow", pred_failed_timeout, NULL, 30000,
                             "Failed with ProvisioningTimeout")
                   : NULL;
    r = mch_send(env.mc, "PUT", "{\"create\":\"50ms\"}", "/_mock/timings");
    CU_ASSERT(r->status == 200 || r->status == 204);
    CU_ASSERT_FATAL(o != NULL);
    CU_ASSERT_EQUAL(num_at(o, "status.failoverCount", 0), 1);
    CU_ASSERT(wait_event(ns, "slow", "ProvisioningTimeout", 30000));
    char id[64] = "";
    CU_ASSERT_EQUAL(live_for_uid(uid, id), 1); /* the replacement, kept */
    cJSON *inst = mc_json("/v1/instances/%s", id);
    CU_ASSERT(inst && mch_streq(str_at(inst, "state"), "pending"));
    CU_ASSERT(inst && mch_streq(tag(inst, "cloudserver.dev/attempt"), "1"));
}

/* ------------------------------------------------------------ suite: credentials */

static int credentials_init(void)
{
    /* The Secret holds a token mockcloud does not know. */
    if (suite_env_init("auth", TOKEN_BAD, FAST_CLOUD) != 0) return -1;
    return start_operator(0, "auth", NULL, NULL);
}

static bool pred_unauthorized(const cJSON *o, const void *arg)
{
    (void)arg;
    return cond_is(o, "CloudAuthorized", "False");
}

static void test_auth_then_fixed(void)
{
    const char *ns = case_ns("auth");
    CU_ASSERT_FATAL(ns != NULL);
    const char *uid = create_cs(ns, "locked", "4Gi", NULL);
    CU_ASSERT_FATAL(uid != NULL);
    cJSON *o = wait_cs(ns, "locked", pred_unauthorized, NULL, 30000, "CloudAuthorized=False");
    CU_ASSERT_FATAL(o != NULL);
    CU_ASSERT(!cond_is(o, "Ready", "True"));
    const char *reason = str_at(condition(o, "CloudAuthorized"), "reason");
    CU_ASSERT(reason && *reason);
    CU_ASSERT_EQUAL(live_for_uid(uid, NULL), 0);
    CU_ASSERT(journal_count("status=401") > 0);

    /* Fix the Secret; the same process must pick it up. */
    pid_t pid = env.op[0]->pid;
    CU_ASSERT_FATAL(put_secret(env.sys_ns, "cloud-credentials", TOKEN_GOOD) == 0);
    o = wait_cs(ns, "locked", pred_ready, NULL, 45000, "Ready after the token was fixed");
    CU_ASSERT_FATAL(o != NULL);
    CU_ASSERT(cond_is(o, "CloudAuthorized", "True"));
    CU_ASSERT(oph_alive(env.op[0]) && env.op[0]->pid == pid);
    CU_ASSERT_EQUAL(live_for_uid(uid, NULL), 1);
}

/* ------------------------------------------------------------ suite: kill/restart */

/* Creates take a while (injected latency), so a SIGKILL finds several in
 * flight: the cloud makes them after the operator died. */
#define SLOW_CREATE_CLOUD                                                                          \
    FAST_CLOUD "faults:\n"                                                                         \
               "  - {id: slow-creates, match: {op: CreateInstance}, effect: {type: latency, "      \
               "latency: 1500ms}}\n"

#define KILL_N 30

static int kill_init(void)
{
    if (suite_env_init("kill", TOKEN_GOOD, SLOW_CREATE_CLOUD) != 0) return -1;
    const char *const extra[] = {"--max-concurrent-reconciles", "8", NULL};
    return start_operator(0, "kill", extra, NULL);
}

static void test_kill_restart(void)
{
    const char *ns = case_ns("kill");
    CU_ASSERT_FATAL(ns != NULL);
    const char *uids[KILL_N];
    for (int i = 0; i < KILL_N; i++) {
        char name[32];
        snprintf(name, sizeof name, "k-%02d", i);
        uids[i] = create_cs(ns, name, "4Gi", NULL);
        CU_ASSERT_FATAL(uids[i] != NULL);
    }
    /* Kill once some creates have happened and others are parked. */
    int64_t end = now_ms() + 60000;
    double made = 0, parked = 0;
    while (now_ms() < end) {
        cJSON *s = mc_json_owned("/_mock/stats");
        made = journal_count("op=CreateInstance&status=202");
        parked = num_at(s, "suspended", 0);
        cJSON_Delete(s);
        if (made >= 6 && parked >= 1) break;
        mch_sleep_ms(20);
    }
    fprintf(stderr, "\n  killing the operator: %g instances made, %g creates in flight\n", made,
            parked);
    CU_ASSERT_FATAL(made >= 6 && parked >= 1);
    CU_ASSERT(oph_kill9(env.op[0]) == 0);
    CU_ASSERT(made < KILL_N); /* really in the middle */

    const char *const extra[] = {"--max-concurrent-reconciles", "8", NULL};
    CU_ASSERT_FATAL(start_operator(0, "kill", extra, NULL) == 0);
    CU_ASSERT_FATAL(wait_all_ready(ns, KILL_N, 120000));
    CU_ASSERT_FATAL(wait_no_parked(30000));

    int bad = 0;
    for (int i = 0; i < KILL_N; i++) {
        int n = live_for_uid(uids[i], NULL);
        if (n != 1) {
            fprintf(stderr, "\n  uid %s (k-%02d): %d live instances\n", uids[i], i, n);
            bad++;
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(live_in_ns(ns), KILL_N);
    CU_ASSERT(creates_keyed(uids, KILL_N, 1));
}

/* ------------------------------------------------------------ suite: leader election */

static int leader_init(void)
{
    if (suite_env_init("leader", TOKEN_GOOD, FAST_CLOUD) != 0) return -1;
    const char *const extra[] = {"--leader-elect", "--leader-election-namespace",
                                 env.sys_ns,       "--leader-election-id",
                                 "op-it-leader",   NULL};
    if (start_operator(0, "replica-a", extra, NULL) != 0) return -1;
    return start_operator(1, "replica-b", extra, NULL);
}

static const char *lease_holder(void)
{
    csl_kube_error e;
    cJSON *l = kget(&lease_res, env.sys_ns, "op-it-leader", &e);
    return str_at(l, "spec.holderIdentity");
}

/* Index of the one replica that says it leads, or -1 after timeout_ms. */
static int wait_one_leader(long timeout_ms)
{
    int64_t end = now_ms() + timeout_ms;
    double m[2] = {-1, -1};
    for (;;) {
        int leaders = 0, who = -1;
        for (int i = 0; i < 2; i++) {
            m[i] = env.op[i]->pid > 0 ? oph_metric(env.op[i], "leader_election_master_status") : -1;
            if (m[i] == 1) {
                leaders++;
                who = i;
            }
        }
        if (leaders == 1) return who;
        if (now_ms() >= end) break;
        mch_sleep_ms(POLL_MS);
    }
    fprintf(stderr, "\n  leader_election_master_status: a=%g b=%g after %ld ms\n", m[0], m[1],
            timeout_ms);
    return -1;
}

static void test_leader_takeover(void)
{
    const char *ns = case_ns("leader");
    CU_ASSERT_FATAL(ns != NULL);
    int leader = wait_one_leader(60000);
    CU_ASSERT_FATAL(leader >= 0);
    int standby = 1 - leader;
    const char *holder = keeps(lease_holder());
    CU_ASSERT_FATAL(holder && *holder);
    /* A standby is alive and ready to take over (documented: 200). */
    CU_ASSERT_EQUAL(oph_get(env.op[standby], true, "/healthz")->status, 200);
    CU_ASSERT_EQUAL(oph_get(env.op[standby], true, "/readyz")->status, 200);

    CU_ASSERT_FATAL(create_cs(ns, "before", "4Gi", NULL) != NULL);
    CU_ASSERT_FATAL(wait_cs(ns, "before", pred_ready, NULL, 60000, "Ready") != NULL);
    /* Only the leader runs controllers. */
    double standby_reconciles = oph_metric(env.op[standby], "controller_runtime_reconcile_total{");
    if (standby_reconciles > 0)
        fprintf(stderr, "\n  the standby reconciled %g times\n", standby_reconciles);
    CU_ASSERT(standby_reconciles <= 0);

    CU_ASSERT(oph_kill9(env.op[leader]) == 0);
    const char *uid = create_cs(ns, "after", "4Gi", NULL);
    CU_ASSERT_FATAL(uid != NULL);
    /* The Lease must run out first (15 s by default), then the standby
     * leads and reconciles. */
    CU_ASSERT_FATAL(wait_cs(ns, "after", pred_ready, NULL, 90000, "Ready after the takeover") !=
                    NULL);
    CU_ASSERT_EQUAL(wait_one_leader(10000), standby);
    const char *now_holder = lease_holder();
    CU_ASSERT(now_holder && *now_holder && strcmp(now_holder, holder) != 0);
    CU_ASSERT_EQUAL(live_for_uid(uid, NULL), 1);
    CU_ASSERT(oph_alive(env.op[standby]));
}

/* ------------------------------------------------------------ suite: mutation */

static int mutation_init(void)
{
    if (suite_env_init("mut", TOKEN_GOOD, FAST_CLOUD) != 0) return -1;
    const char *const brk[] = {"CSL_OPERATOR_BREAK=no-failover", NULL};
    return start_operator(0, "no-failover", NULL, brk);
}

/* The failover check must notice an operator that does not fail over. */
static void test_failover_check_catches_mutation(void)
{
    CU_ASSERT(oph_stderr_has(env.op[0], "no-failover"));
    const char *ns = case_ns("mut");
    CU_ASSERT_FATAL(ns != NULL);
    const char *uid = create_cs(ns, "app", "4Gi", NULL);
    CU_ASSERT_FATAL(uid != NULL);
    CU_ASSERT_FATAL(wait_cs(ns, "app", pred_ready, NULL, 60000, "Ready") != NULL);
    fprintf(stderr, "\n  (expected: the failover check reports a failure below)");
    /* 25 s: two of the operator's 10 s cloud listings, and many times what
     * failover takes once the crash is seen. */
    CU_ASSERT_FALSE(crash_and_check_failover(ns, "app", uid, 25000));
}

/* ------------------------------------------------------------ registry */

static CU_TestInfo operator_tests[] = {
    {"10 concurrent creates, all Ready, one instance each", test_concurrent_creates},
    {"resize: memory and cpu up", test_resize},
    {"failover after a crash", test_failover},
    {"deletion, policy Delete", test_delete_policy_delete},
    {"deletion, policy Retain", test_delete_policy_retain},
    {"503 outage, then recovery", test_outage_recovery},
    {"CloudServerSet 3 -> 6 -> 2, then deleted", test_set_scale},
    {"metrics and probes", test_metrics_and_probes},
    {"clean stop", test_clean_stop},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo features_tests[] = {
    {"spec.credentialsSecretRef: missing, refused, fixed", test_credentials_secret_ref},
    {"zone out of capacity: failover to a --zones zone", test_zone_fallback},
    {"scheduled backup: missed start time taken, retention prunes", test_scheduled_backup},
    {"timeouts.create 2s: replaced once, then given up", test_provisioning_timeout},
    {"clean stop", test_clean_stop},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo credentials_tests[] = {
    {"wrong token, then fixed in the Secret", test_auth_then_fixed},
    {"clean stop", test_clean_stop},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo kill_tests[] = {
    {"SIGKILL amid 30 creates, restart: one instance each", test_kill_restart},
    {"clean stop", test_clean_stop},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo leader_tests[] = {
    {"two replicas, leader killed, standby takes over", test_leader_takeover},
    {"clean stop", test_clean_stop},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo mutation_tests[] = {
    {"the failover check catches CSL_OPERATOR_BREAK=no-failover",
     test_failover_check_catches_mutation},
    {"clean stop", test_clean_stop},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"operator", operator_init, suite_env_cleanup, test_setup, test_teardown, operator_tests},
    {"features", features_init, suite_env_cleanup, test_setup, test_teardown, features_tests},
    {"credentials", credentials_init, suite_env_cleanup, test_setup, test_teardown,
     credentials_tests},
    {"kill-restart", kill_init, suite_env_cleanup, test_setup, test_teardown, kill_tests},
    {"leader-election", leader_init, suite_env_cleanup, test_setup, test_teardown, leader_tests},
    {"mutation", mutation_init, suite_env_cleanup, test_setup, test_teardown, mutation_tests},
    CU_SUITE_INFO_NULL,
};

CSL_TEST_MAIN(suites)
