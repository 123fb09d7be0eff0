/* server.c — mockcloud's request pipeline, observability, state file and
 * lifecycle ticker (see server.h; the /_mock routes live in control.c).
 *
 * Design idea: every /v1 route goes through one handler that walks the same
 * pipeline — fault decision, latency, request-phase effect, auth, the cloud
 * call, state file, response-phase effect — keeping its place in a small
 * per-request record. A latency is a suspension of the connection, not a
 * sleeping thread: the handler returns and is called again when the delay
 * is over, picking up at the step it left. Whatever the outcome, the
 * journal and the metrics see the request once, when it ends (on_done). */
#include "server_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "csl/buf.h"
#include "csl/clock.h"
#include "csl/log.h"

/* ---------------------------------------------------------------- routes */

static void remove_stale_temp_files(const char *state_file);

typedef enum {
    V1_CREATE_INSTANCE,
    V1_LIST_INSTANCES,
    V1_GET_INSTANCE,
    V1_RESIZE_INSTANCE,
    V1_DELETE_INSTANCE,
    V1_INSTANCE_ACTION,
    V1_CREATE_SNAPSHOT,
    V1_LIST_SNAPSHOTS,
    V1_GET_SNAPSHOT,
    V1_DELETE_SNAPSHOT,
    V1_GET_OPERATION,
    V1_COUNT
} v1_kind;

static const struct {
    const char *method;
    const char *pattern;
    const char *op;
} v1_table[V1_COUNT] = {
    [V1_CREATE_INSTANCE] = {"POST", "/v1/instances", "CreateInstance"},
    [V1_LIST_INSTANCES] = {"GET", "/v1/instances", "ListInstances"},
    [V1_GET_INSTANCE] = {"GET", "/v1/instances/{id}", "GetInstance"},
    [V1_RESIZE_INSTANCE] = {"PATCH", "/v1/instances/{id}", "ResizeInstance"},
    [V1_DELETE_INSTANCE] = {"DELETE", "/v1/instances/{id}", "DeleteInstance"},
    [V1_INSTANCE_ACTION] = {"POST", "/v1/instances/{id}/actions/{action}", "InstanceAction"},
    [V1_CREATE_SNAPSHOT] = {"POST", "/v1/instances/{id}/snapshots", "CreateSnapshot"},
    [V1_LIST_SNAPSHOTS] = {"GET", "/v1/snapshots", "ListSnapshots"},
    [V1_GET_SNAPSHOT] = {"GET", "/v1/snapshots/{id}", "GetSnapshot"},
    [V1_DELETE_SNAPSHOT] = {"DELETE", "/v1/snapshots/{id}", "DeleteSnapshot"},
    [V1_GET_OPERATION] = {"GET", "/v1/operations/{id}", "GetOperation"},
};

struct mc_v1_route {
    mc_server *s;
    v1_kind kind;
};

/* Where a /v1 request is in the pipeline between handler calls. */
typedef enum {
    STEP_NEW = 0,
    STEP_DELAYED, /* suspended for the injected latency */
    STEP_HUNG,    /* suspended for good; a wake-up only means "close" */
} v1_step;

/* What the server keeps about a request (csl_http_set_data), any route. */
typedef struct req_state {
    v1_step step;
    bool recorded;      /* journal and metrics have seen it */
    bool evaluated;     /* fd holds the fault decision (/v1 only) */
    int64_t arrival_ms; /* wall clock, for the journal */
    mc_fault_decision fd;
} req_state;

/* The request's state, created on first use (NULL on allocation failure). */
static req_state *request_state(csl_http_req *req)
{
    req_state *st = csl_http_data(req);
    if (st) return st;
    st = calloc(1, sizeof *st);
    if (!st) return NULL;
    st->arrival_ms = csl_wall_ms() - csl_http_elapsed_ns(req) / 1000000;
    csl_http_set_data(req, st, free);
    return st;
}

static bool is_mutating(const char *method)
{
    return strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0;
}

/* ---------------------------------------------------------------- helpers */

void mc_srv_send(csl_http_req *req, mc_reply *rep)
{
    if (rep->location[0]) csl_http_set_header(req, "Location", rep->location);
    if (rep->text)
        csl_http_respond(req, rep->status, "application/json", rep->text, rep->text_len);
    else if (rep->body)
        csl_http_respond_json(req, rep->status, rep->body);
    else
        csl_http_respond(req, rep->status, NULL, NULL, 0);
    mc_reply_free(rep);
}

typedef struct kv_vec {
    mc_kv *items;
    size_t len, cap;
    bool oom;
} kv_vec;

static bool kv_push(const char *k, const char *v, void *ctx)
{
    kv_vec *vec = ctx;
    if (vec->len == vec->cap) {
        size_t cap = vec->cap ? vec->cap * 2 : 8;
        mc_kv *items = realloc(vec->items, cap * sizeof *items);
        if (!items) {
            vec->oom = true;
            return false;
        }
        vec->items = items;
        vec->cap = cap;
    }
    vec->items[vec->len++] = (mc_kv){k, v ? v : ""};
    return true;
}

int mc_srv_query(csl_http_req *req, mc_kv **out, size_t *n)
{
    kv_vec vec = {0};
    csl_http_query_each(req, kv_push, &vec);
    if (vec.oom) {
        free(vec.items);
        return -1;
    }
    *out = vec.items;
    *n = vec.len;
    return 0;
}

cJSON *mc_srv_parse_body(csl_http_req *req, mc_reply *rep)
{
    size_t len = 0;
    const char *body = csl_http_body(req, &len);
    if (!body || len == 0) {
        *rep = mc_reply_error(400, "InvalidRequest", "request body: expected a JSON object");
        return NULL;
    }
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (!j) {
        size_t off = end && end >= body ? (size_t)(end - body) : 0;
        *rep =
            mc_reply_error(400, "InvalidRequest", "request body: malformed JSON at byte %zu", off);
        return NULL;
    }
    return j;
}

const char *mc_srv_bearer(csl_http_req *req, char *buf, size_t bufsz)
{
    const char *h = csl_http_header(req, "Authorization");
    if (!h) return NULL;
    while (*h == ' ') h++;
    if (strncasecmp(h, "Bearer", 6) != 0 || (h[6] != ' ' && h[6] != '\t')) return NULL;
    h += 6;
    while (*h == ' ' || *h == '\t') h++;
    size_t n = strlen(h);
    while (n && (h[n - 1] == ' ' || h[n - 1] == '\t')) n--;
    if (n == 0 || n >= bufsz) return NULL;
    memcpy(buf, h, n);
    buf[n] = '\0';
    return buf;
}

/* ---------------------------------------------------------------- state file */

void mc_srv_persist(mc_server *s)
{
    if (!s->cfg.state_file) return;
    uint64_t want = mc_cloud_generation(s->cloud);
    pthread_mutex_lock(&s->save_lock);
    /* A writer that held the lock before us may already have saved our
     * change: then there is nothing left to do (the group commit). */
    if (s->saved_gen < want) {
        /* Read before saving: the file holds at least this generation. */
        uint64_t gen = mc_cloud_generation(s->cloud);
        char err[512];
        if (mc_cloud_save(s->cloud, s->cfg.state_file, err, sizeof err) == 0) {
            s->saved_gen = gen;
            if (s->save_failing) csl_log(CSL_LOG_INFO, "state file writable again", NULL);
            s->save_failing = false;
        } else if (!s->save_failing) {
            /* Logged once per failing stretch, not once per request. */
            csl_log(CSL_LOG_ERROR, "cannot write the state file", "error", err, NULL);
            s->save_failing = true;
        }
    }
    pthread_mutex_unlock(&s->save_lock);
}

/* ---------------------------------------------------------------- ticker */

void mc_srv_kick(mc_server *s)
{
    pthread_mutex_lock(&s->tick_lock);
    s->tick_kick = true;
    pthread_cond_signal(&s->tick_cond);
    pthread_mutex_unlock(&s->tick_lock);
}

/* Applies transitions as they fall due, so states (and the state file) move
 * with no request arriving. Sleeps until the next deadline, at most a
 * second, which also bounds the effect of wall-clock jumps. */
static void *ticker_main(void *arg)
{
    mc_server *s = arg;
    pthread_mutex_lock(&s->tick_lock);
    while (!s->tick_stop) {
        s->tick_kick = false;
        pthread_mutex_unlock(&s->tick_lock);

        int64_t now = csl_wall_ms();
        mc_cloud_advance(s->cloud, now);
        mc_srv_persist(s);
        int64_t next = mc_cloud_next_deadline(s->cloud);
        int64_t until = now + 1000;
        if (next < until) until = next;

        pthread_mutex_lock(&s->tick_lock);
        if (s->tick_stop || s->tick_kick) continue;
        struct timespec ts = {.tv_sec = (time_t)(until / 1000),
                              .tv_nsec = (long)(until % 1000) * 1000000L};
        if (until > now) pthread_cond_timedwait(&s->tick_cond, &s->tick_lock, &ts);
    }
    pthread_mutex_unlock(&s->tick_lock);
    return NULL;
}

/* ---------------------------------------------------------------- /v1 pipeline */

static const char *header_cb(void *ctx, const char *name)
{
    return csl_http_header(ctx, name);
}

/* A JSON text cut short, as a flaky proxy would deliver it. */
static const char malformed_body[] = "{\"items\":[{\"id\":\"i-0f3a9c2e\",\"state\":\"runn";

static void send_malformed(mc_server *s, csl_http_req *req, const mc_reply *real)
{
    int status = real ? real->status : 200;
    /* The real reply's text: as serialised already, or printed from its tree. */
    char *printed = real && !real->text && real->body ? cJSON_PrintUnformatted(real->body) : NULL;
    const char *text = printed ? printed : real ? real->text : NULL;
    if (text && status != 204 && status >= 200) {
        size_t n = printed ? strlen(printed) : real->text_len;
        mc_srv_record(s, req, status);
        csl_http_respond(req, status, "application/json", text, n > 1 ? n / 2 : n);
    } else {
        mc_srv_record(s, req, 200);
        csl_http_respond(req, 200, "application/json", malformed_body, sizeof malformed_body - 1);
    }
    free(printed);
}

/* Ends the request the way the fault decision says. real is the reply the
 * operation produced (response phase) or NULL (request phase). */
static void apply_effect(mc_server *s, csl_http_req *req, req_state *st, const mc_reply *real)
{
    const mc_fault_decision *fd = &st->fd;
    switch (fd->action) {
    case MC_FX_ERROR: {
        char ra[24];
        if (fd->retry_after_s > 0) {
            snprintf(ra, sizeof ra, "%d", fd->retry_after_s);
            csl_http_set_header(req, "Retry-After", ra);
        }
        if (fd->status == 401) csl_http_set_header(req, "WWW-Authenticate", "Bearer");
        mc_srv_record(s, req, fd->status);
        csl_http_respond_error(req, fd->status, fd->code, "%s", fd->message);
        return;
    }
    case MC_FX_RESET:
        mc_srv_record(s, req, 0);
        csl_http_reset(req);
        return;
    case MC_FX_EMPTY:
        mc_srv_record(s, req, 0);
        csl_http_close(req);
        return;
    case MC_FX_HANG:
        /* Recorded when it ends (on_done), with how long the client waited. */
        st->step = STEP_HUNG;
        csl_http_suspend(req, -1);
        return;
    case MC_FX_MALFORMED:
        send_malformed(s, req, real);
        return;
    case MC_FX_NONE:
        break;
    }
    mc_srv_record(s, req, 500);
    csl_http_respond_error(req, 500, "InternalError", "no fault effect to apply");
}

/* 0 when the request may go on; else the reply has been sent. */
static int check_auth(mc_server *s, csl_http_req *req)
{
    if (!mc_tokens_auth_on(s->tokens)) return 0;
    char buf[MC_TOKEN_MAX + 1];
    const char *tok = mc_srv_bearer(req, buf, sizeof buf);
    mc_access a = mc_tokens_lookup(s->tokens, tok);
    if (a == MC_ACCESS_NONE) {
        csl_http_set_header(req, "WWW-Authenticate", "Bearer");
        mc_srv_record(s, req, 401);
        csl_http_respond_error(req, 401, "Unauthorized",
                               tok ? "the bearer token is not valid"
                                   : "missing \"Authorization: Bearer <token>\" header");
        return -1;
    }
    if (a == MC_ACCESS_READ_ONLY && is_mutating(csl_http_method(req))) {
        mc_srv_record(s, req, 403);
        csl_http_respond_error(req, 403, "Forbidden",
                               "the token is read-only; %s needs a read-write token",
                               csl_http_method(req));
        return -1;
    }
    return 0;
}

static mc_reply call_api(mc_server *s, v1_kind kind, csl_http_req *req, int64_t now)
{
    mc_cloud *c = s->cloud;
    size_t len = 0;
    const char *body = csl_http_body(req, &len);
    const char *id = csl_http_param(req, "id");
    const char *key = csl_http_header(req, "Idempotency-Key");
    switch (kind) {
    case V1_CREATE_INSTANCE:
        return mc_api_create_instance(c, body, len, key, now);
    case V1_GET_INSTANCE:
        return mc_api_get_instance(c, id, now);
    case V1_RESIZE_INSTANCE:
        return mc_api_resize_instance(c, id, body, len, now);
    case V1_DELETE_INSTANCE:
        return mc_api_delete_instance(c, id, now);
    case V1_INSTANCE_ACTION:
        return mc_api_instance_action(c, id, csl_http_param(req, "action"), now);
    case V1_CREATE_SNAPSHOT:
        return mc_api_create_snapshot(c, id, body, len, key, now);
    case V1_GET_SNAPSHOT:
        return mc_api_get_snapshot(c, id, now);
    case V1_DELETE_SNAPSHOT:
        return mc_api_delete_snapshot(c, id, now);
    case V1_GET_OPERATION:
        return mc_api_get_operation(c, id, now);
    case V1_LIST_INSTANCES:
    case V1_LIST_SNAPSHOTS: {
        mc_kv *q = NULL;
        size_t n = 0;
        if (mc_srv_query(req, &q, &n) < 0)
            return mc_reply_error(500, "InternalError", "out of memory");
        mc_reply r = kind == V1_LIST_INSTANCES ? mc_api_list_instances(c, q, n, now)
                                               : mc_api_list_snapshots(c, q, n, now);
        free(q);
        return r;
    }
    case V1_COUNT:
        break;
    }
    return mc_reply_error(500, "InternalError", "unknown route");
}

static void v1_handler(csl_http_req *req, void *route_data)
{
    mc_v1_route *rt = route_data;
    mc_server *s = rt->s;
    req_state *st = csl_http_data(req);

    if (st && st->step == STEP_HUNG) {
        /* Woken only because the client left or the server stops. */
        csl_http_close(req);
        return;
    }
    if (!st || !st->evaluated) {
        st = request_state(req);
        if (!st) {
            csl_http_respond_error(req, 500, "InternalError", "out of memory");
            return;
        }
        mc_fault_request fr = {
            .method = csl_http_method(req),
            .path = csl_http_path(req),
            .op = v1_table[rt->kind].op,
            .header = header_cb,
            .header_ctx = req,
        };
        mc_faults_evaluate(s->faults, &fr, csl_wall_ms(), &st->fd);
        st->evaluated = true;
        if (st->fd.latency_ns > 0) {
            st->step = STEP_DELAYED;
            csl_http_suspend(req, st->fd.latency_ns);
            return;
        }
    }

    if (st->fd.action != MC_FX_NONE && st->fd.phase == MC_PHASE_REQUEST) {
        apply_effect(s, req, st, NULL);
        return;
    }
    if (check_auth(s, req) < 0) return;

    mc_reply rep = call_api(s, rt->kind, req, csl_wall_ms());
    if (is_mutating(csl_http_method(req))) {
        mc_srv_persist(s);
        mc_srv_kick(s);
    }
    if (st->fd.action != MC_FX_NONE) {
        apply_effect(s, req, st, &rep);
        mc_reply_free(&rep);
        return;
    }
    mc_srv_record(s, req, rep.status);
    mc_srv_send(req, &rep);
}

/* ---------------------------------------------------------------- /healthz, /metrics */

static void healthz_handler(csl_http_req *req, void *route_data)
{
    static const char ok[] = "{\"status\":\"ok\"}";
    mc_srv_record(route_data, req, 200);
    csl_http_respond(req, 200, "application/json", ok, sizeof ok - 1);
}

static void metrics_handler(csl_http_req *req, void *route_data)
{
    mc_server *s = route_data;
    csl_buf out = CSL_BUF_INIT;
    if (!csl_metrics_render(s->metrics, &out)) {
        csl_buf_free(&out);
        mc_srv_record(s, req, 500);
        csl_http_respond_error(req, 500, "InternalError", "out of memory rendering metrics");
        return;
    }
    mc_srv_record(s, req, 200);
    csl_http_respond(req, 200, "text/plain; version=0.0.4; charset=utf-8", out.data, out.len);
    csl_buf_free(&out);
}

static void collect_metrics(csl_metrics *reg, void *ctx)
{
    mc_server *s = ctx;
    size_t counts[MC_STATE_COUNT];
    mc_cloud_advance(s->cloud, csl_wall_ms());
    mc_cloud_counts(s->cloud, counts);
    for (int i = 0; i < MC_STATE_COUNT; i++)
        csl_metric_set(s->m_instances, (double)counts[i], CSL_LABELS(mc_state_name((mc_state)i)));
}

/* ---------------------------------------------------------------- on_done */

static void count_fault(mc_server *s, const char *type)
{
    csl_metric_inc(s->m_faults, CSL_LABELS(type));
    for (size_t i = 0; i < s->nfault_types; i++) {
        if (strcmp(s->fault_types[i].name, type) == 0) {
            s->fault_types[i].n++;
            return;
        }
    }
    if (s->nfault_types < MC_FAULT_TYPES_MAX) {
        snprintf(s->fault_types[s->nfault_types].name, sizeof s->fault_types[0].name, "%s", type);
        s->fault_types[s->nfault_types++].n = 1;
    }
}

void mc_srv_journal_cleared(mc_server *s)
{
    pthread_mutex_lock(&s->stats_lock);
    s->journal_fill = 0;
    pthread_mutex_unlock(&s->stats_lock);
}

/* Journal, metrics and stats see a request once. Handlers record just
 * before they end a request, so a client that has its reply (or its reset)
 * finds the entry in the journal at once; on_done records the rest —
 * requests no handler saw (404, 405, 413) and hangs. */
static void record(mc_server *s, csl_http_req *req, int status, req_state *st)
{
    const char *route = csl_http_route_name(req);
    const char *method = csl_http_method(req);
    int64_t elapsed_ns = csl_http_elapsed_ns(req);
    const char *op = route ? route : "";
    bool fired = st && st->evaluated && st->fd.type;

    char code[12];
    snprintf(code, sizeof code, "%d", status);
    csl_metric_inc(s->m_requests, CSL_LABELS(route ? route : "none", method, code));
    csl_metric_observe(s->m_duration, (double)elapsed_ns / 1e9, CSL_LABELS(route ? route : "none"));

    pthread_mutex_lock(&s->stats_lock);
    s->req_total++;
    if (status >= 0 && status < MC_STATUS_MAX) s->by_status[status]++;
    if (fired) {
        if (st->fd.latency_ns > 0) count_fault(s, "latency");
        if (st->fd.action != MC_FX_NONE) count_fault(s, st->fd.type);
    }
    /* Scrapes and probes would drown the journal; they are only counted. */
    bool journal = !route || (strcmp(route, "Healthz") != 0 && strcmp(route, "Metrics") != 0);
    bool dropped = false;
    if (journal) {
        if (s->journal_fill >= s->cfg.journal_size)
            dropped = true;
        else
            s->journal_fill++;
    }
    pthread_mutex_unlock(&s->stats_lock);
    if (dropped) csl_metric_inc(s->m_dropped, NULL);

    if (journal) {
        mc_journal_entry e;
        memset(&e, 0, sizeof e);
        e.time_ms = st ? st->arrival_ms : csl_wall_ms() - elapsed_ns / 1000000;
        MC_JOURNAL_SET(e.method, method);
        MC_JOURNAL_SET(e.path, csl_http_path(req));
        MC_JOURNAL_SET(e.op, op);
        e.status = status;
        e.latency_us = elapsed_ns / 1000;
        const char *key = csl_http_header(req, "Idempotency-Key");
        if (key) MC_JOURNAL_SET(e.idem_key, key);
        if (fired) {
            MC_JOURNAL_SET(e.fault, st->fd.type);
            MC_JOURNAL_SET(e.rules, st->fd.rules);
        }
        mc_journal_add(s->journal, &e);
    }

    if (csl_log_enabled(CSL_LOG_DEBUG)) {
        char lat[32];
        snprintf(lat, sizeof lat, "%.3fms", (double)elapsed_ns / 1e6);
        csl_log(CSL_LOG_DEBUG, "request", "method", method, "path", csl_http_path(req), "op", op,
                "status", code, "latency", lat, "fault", fired ? st->fd.type : "", NULL);
    }
}

void mc_srv_record(mc_server *s, csl_http_req *req, int status)
{
    req_state *st = request_state(req);
    if (st && st->recorded) return;
    record(s, req, status, st);
    if (st) st->recorded = true;
}

static void on_done(csl_http_req *req, void *ctx)
{
    req_state *st = csl_http_data(req);
    if (st && st->recorded) return;
    record(ctx, req, csl_http_status(req), st);
}

/* ---------------------------------------------------------------- stats */

cJSON *mc_srv_stats(mc_server *s)
{
    cJSON *root = cJSON_CreateObject();
    if (!root) return NULL;
    cJSON_AddNumberToObject(root, "uptimeSeconds",
                            (double)(csl_mono_ns() - s->start_mono_ns) / 1e9);
    cJSON *req = cJSON_AddObjectToObject(root, "requests");
    cJSON *faults = cJSON_AddObjectToObject(root, "faults");
    cJSON *by_type = cJSON_AddObjectToObject(faults, "byType");
    pthread_mutex_lock(&s->stats_lock);
    cJSON_AddNumberToObject(req, "total", (double)s->req_total);
    cJSON *by_status = cJSON_AddObjectToObject(req, "byStatus");
    for (int i = 0; i < MC_STATUS_MAX; i++) {
        if (!s->by_status[i]) continue;
        char k[12];
        snprintf(k, sizeof k, "%d", i);
        cJSON_AddNumberToObject(by_status, k, (double)s->by_status[i]);
    }
    for (size_t i = 0; i < s->nfault_types; i++)
        cJSON_AddNumberToObject(by_type, s->fault_types[i].name, (double)s->fault_types[i].n);
    pthread_mutex_unlock(&s->stats_lock);

    size_t counts[MC_STATE_COUNT];
    mc_cloud_advance(s->cloud, csl_wall_ms());
    mc_cloud_counts(s->cloud, counts);
    cJSON *inst = cJSON_AddObjectToObject(root, "instances");
    cJSON *by_state = cJSON_AddObjectToObject(inst, "byState");
    for (int i = 0; i < MC_STATE_COUNT; i++)
        cJSON_AddNumberToObject(by_state, mc_state_name((mc_state)i), (double)counts[i]);
    cJSON_AddNumberToObject(root, "faultRules", (double)mc_faults_count(s->faults));
    cJSON_AddNumberToObject(root, "suspended", (double)csl_httpd_suspended(s->httpd));
    return root;
}

/* ---------------------------------------------------------------- lifetime */

void mc_server_config_init(mc_server_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->listen = MC_DEFAULT_LISTEN;
    cfg->journal_size = MC_DEFAULT_JOURNAL_SIZE;
    cfg->max_body = MC_DEFAULT_MAX_BODY;
    cfg->threads = MC_DEFAULT_THREADS;
    cfg->max_connections = MC_DEFAULT_MAX_CONNECTIONS;
    cfg->conn_memory = MC_DEFAULT_CONN_MEMORY;
}

/* A seed nobody chose: time and pid through splitmix64's finaliser. */
static uint64_t random_seed(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t z = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    z ^= (uint64_t)getpid() << 32;
    z += 0x9e3779b97f4a7c15u;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static int register_metrics(mc_server *s)
{
    csl_metrics *m = s->metrics;
    s->m_requests = csl_metrics_counter(m, "mockcloud_http_requests_total",
                                        "HTTP requests answered, by operation, method and status "
                                        "(0: reset, closed or hung).",
                                        CSL_LABELS("op", "method", "code"));
    s->m_duration = csl_metrics_histogram(m, "mockcloud_http_request_duration_seconds",
                                          "Time from request arrival to its end, injected latency "
                                          "included.",
                                          CSL_LABELS("op"), NULL, 0);
    s->m_faults =
        csl_metrics_counter(m, "mockcloud_faults_injected_total",
                            "Faults injected into requests, by effect type.", CSL_LABELS("type"));
    s->m_instances = csl_metrics_gauge(m, "mockcloud_instances", "Instances by lifecycle state.",
                                       CSL_LABELS("state"));
    s->m_dropped =
        csl_metrics_counter(m, "mockcloud_journal_dropped_total",
                            "Journal entries overwritten because the journal was full.", NULL);
    if (!s->m_requests || !s->m_duration || !s->m_faults || !s->m_instances || !s->m_dropped)
        return -1;
    csl_metrics_register_process(m);
    csl_metrics_on_collect(m, collect_metrics, s);
    return 0;
}

static int register_routes(mc_server *s)
{
    s->v1_routes = calloc(V1_COUNT, sizeof *s->v1_routes);
    if (!s->v1_routes) return -1;
    for (int k = 0; k < V1_COUNT; k++) {
        s->v1_routes[k] = (mc_v1_route){s, (v1_kind)k};
        if (csl_httpd_route(s->httpd, v1_table[k].method, v1_table[k].pattern, v1_table[k].op,
                            v1_handler, &s->v1_routes[k]) < 0)
            return -1;
    }
    if (csl_httpd_route(s->httpd, "GET", "/healthz", "Healthz", healthz_handler, s) < 0 ||
        csl_httpd_route(s->httpd, "GET", "/metrics", "Metrics", metrics_handler, s) < 0)
        return -1;
    if (mc_control_register(s) < 0) return -1;
    csl_httpd_on_done(s->httpd, on_done, s);
    return 0;
}

/* Tokens from the flags and the tokens file (the config's come later). */
static int load_tokens(mc_server *s, char *err, size_t errsz)
{
    for (size_t i = 0; i < s->cfg.ntokens; i++) {
        char why[320];
        if (mc_tokens_put_flag(s->tokens, s->cfg.tokens[i], why, sizeof why) < 0) {
            snprintf(err, errsz, "--token: %s", why);
            return -1;
        }
    }
    if (s->cfg.tokens_file && mc_tokens_load_file(s->tokens, s->cfg.tokens_file, err, errsz) < 0)
        return -1;
    return 0;
}

mc_server *mc_server_new(const mc_server_config *cfg, char *err, size_t errsz)
{
    mc_startup st;
    memset(&st, 0, sizeof st);
    mc_server *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errsz, "out of memory");
        return NULL;
    }
    s->cfg = *cfg;
    s->start_mono_ns = csl_mono_ns();
    pthread_mutex_init(&s->stats_lock, NULL);
    pthread_mutex_init(&s->save_lock, NULL);
    pthread_mutex_init(&s->tick_lock, NULL);
    pthread_cond_init(&s->tick_cond, NULL);
    pthread_mutex_init(&s->ctl_lock, NULL);

    if (cfg->config_file && mc_config_load(&st, cfg->config_file, err, errsz) < 0) goto err;
    s->seed = cfg->has_seed ? cfg->seed : st.has_seed ? st.seed : random_seed();

    s->cloud = mc_cloud_new(s->seed);
    s->faults = mc_faults_new(s->seed);
    s->journal = mc_journal_new(cfg->journal_size ? cfg->journal_size : 1);
    s->tokens = mc_tokens_new();
    s->metrics = csl_metrics_new();
    if (!s->cloud || !s->faults || !s->journal || !s->tokens || !s->metrics) {
        snprintf(err, errsz, "out of memory");
        goto err;
    }
    if (load_tokens(s, err, errsz) < 0) goto err;
    if (mc_config_apply(&st, s, csl_wall_ms(), err, errsz) < 0) goto err;
    if (mc_tokens_set_baseline(s->tokens) < 0) {
        snprintf(err, errsz, "out of memory");
        goto err;
    }
    mc_config_free(&st);

    if (cfg->state_file) {
        char why[512];
        remove_stale_temp_files(cfg->state_file);
        if (mc_cloud_load(s->cloud, cfg->state_file, why, sizeof why) < 0) {
            snprintf(err, errsz, "%s", why);
            goto err;
        }
        /* Write once now, so an unwritable path fails at start, not later. */
        uint64_t gen = mc_cloud_generation(s->cloud);
        if (mc_cloud_save(s->cloud, cfg->state_file, why, sizeof why) < 0) {
            snprintf(err, errsz, "%s", why);
            goto err;
        }
        s->saved_gen = gen;
    }

    csl_httpd_config hc = {
        .listen = cfg->listen,
        .max_body = cfg->max_body,
        .threads = cfg->threads,
        .max_connections = cfg->max_connections,
        .conn_memory = cfg->conn_memory,
    };
    s->httpd = csl_httpd_new(&hc);
    if (!s->httpd || register_metrics(s) < 0 || register_routes(s) < 0) {
        snprintf(err, errsz, "cannot set up the HTTP server (out of memory)");
        goto err;
    }
    return s;

err:
    mc_config_free(&st);
    mc_server_free(s);
    return NULL;
}

/* A process killed between writing its temp file and renaming it leaves
 * "<state>.tmp.<pid>" behind. Remove those whose writer is gone; a live
 * writer's file is left alone. */
static void remove_stale_temp_files(const char *state_file)
{
    csl_buf pattern = CSL_BUF_INIT;
    csl_buf_printf(&pattern, "%s.tmp.*", state_file);
    glob_t g;
    if (!pattern.oom && glob(csl_buf_str(&pattern), GLOB_NOSORT, NULL, &g) == 0) {
        for (size_t i = 0; i < g.gl_pathc; i++) {
            const char *dot = strrchr(g.gl_pathv[i], '.');
            char *end;
            long pid = strtol(dot + 1, &end, 10);
            if (*end || pid <= 0) continue;
            if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
            if (unlink(g.gl_pathv[i]) == 0)
                csl_log(CSL_LOG_INFO, "removed a stale state temp file", "path", g.gl_pathv[i], NULL);
        }
        globfree(&g);
    }
    csl_buf_free(&pattern);
}

/* temp file + rename, so a reader never sees a half-written number. */
static int write_port_file(const char *path, int port, char *err, size_t errsz)
{
    size_t n = strlen(path);
    char *tmp = malloc(n + 32);
    if (!tmp) {
        snprintf(err, errsz, "out of memory");
        return -1;
    }
    snprintf(tmp, n + 32, "%s.tmp.%ld", path, (long)getpid());
    int rc = -1;
    FILE *f = fopen(tmp, "w");
    if (!f) {
        snprintf(err, errsz, "--port-file %s: cannot create %s: %s", path, tmp, strerror(errno));
        goto out;
    }
    fprintf(f, "%d\n", port);
    if (fclose(f) != 0) {
        snprintf(err, errsz, "--port-file %s: cannot write: %s", path, strerror(errno));
        unlink(tmp);
        goto out;
    }
    if (rename(tmp, path) != 0) {
        snprintf(err, errsz, "--port-file %s: cannot rename %s: %s", path, tmp, strerror(errno));
        unlink(tmp);
        goto out;
    }
    rc = 0;
out:
    free(tmp);
    return rc;
}

int mc_server_start(mc_server *s, char *err, size_t errsz)
{
    if (csl_httpd_start(s->httpd, err, errsz) < 0) return -1;
    s->started = true;
    s->tick_stop = false;
    if (pthread_create(&s->ticker, NULL, ticker_main, s) != 0) {
        snprintf(err, errsz, "cannot start the lifecycle thread");
        return -1;
    }
    s->ticker_running = true;
    if (s->cfg.port_file &&
        write_port_file(s->cfg.port_file, csl_httpd_port(s->httpd), err, errsz) < 0)
        return -1;
    return 0;
}

int mc_server_port(const mc_server *s)
{
    return s->httpd ? csl_httpd_port(s->httpd) : 0;
}

uint64_t mc_server_seed(const mc_server *s)
{
    return s->seed;
}

bool mc_server_auth_enabled(const mc_server *s)
{
    return mc_tokens_auth_on(s->tokens);
}

void mc_server_stop(mc_server *s)
{
    if (!s || s->stopped) return;
    s->stopped = true;
    /* Requests first: their on_done still writes the journal and metrics. */
    if (s->httpd) csl_httpd_stop(s->httpd);
    if (s->ticker_running) {
        pthread_mutex_lock(&s->tick_lock);
        s->tick_stop = true;
        pthread_cond_signal(&s->tick_cond);
        pthread_mutex_unlock(&s->tick_lock);
        pthread_join(s->ticker, NULL);
        s->ticker_running = false;
    }
    if (s->cloud && s->started) {
        mc_cloud_advance(s->cloud, csl_wall_ms());
        mc_srv_persist(s);
    }
}

void mc_server_free(mc_server *s)
{
    if (!s) return;
    mc_server_stop(s);
    csl_httpd_free(s->httpd);
    mc_control_free(s);
    free(s->v1_routes);
    csl_metrics_free(s->metrics);
    mc_tokens_free(s->tokens);
    mc_journal_free(s->journal);
    mc_faults_free(s->faults);
    mc_cloud_free(s->cloud);
    pthread_mutex_destroy(&s->ctl_lock);
    pthread_cond_destroy(&s->tick_cond);
    pthread_mutex_destroy(&s->tick_lock);
    pthread_mutex_destroy(&s->save_lock);
    pthread_mutex_destroy(&s->stats_lock);
    free(s);
}
