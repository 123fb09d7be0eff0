/* control.c — the /_mock control API: fault rules, outages, chaos, timings,
 * capacity, tokens, the journal, stats, state dump and reset.
 *
 * Design idea: each route is a function from the request to an mc_reply,
 * with no I/O of its own; one wrapper checks the admin token, calls it,
 * writes the state file when something may have changed and only then
 * sends the reply. So "the reply means it is on disk" holds for every
 * control call alike, and the routes stay short. Control requests are never
 * subject to fault rules. */
#include "server_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csl/clock.h"
#include "csl/units.h"

typedef mc_reply (*ctl_fn)(mc_server *s, csl_http_req *req);

struct mc_ctl_route {
    mc_server *s;
    ctl_fn fn;
};

static mc_reply no_content(void)
{
    return mc_reply_json(204, NULL);
}

static mc_reply oom(void)
{
    return mc_reply_error(500, "InternalError", "out of memory");
}

static mc_reply json_or_oom(int status, cJSON *j)
{
    return j ? mc_reply_json(status, j) : oom();
}

/* A 400 for the first member of obj not in allowed (NULL-terminated). */
static bool unknown_field(const cJSON *obj, const char *const *allowed, const char *what,
                          mc_reply *rep)
{
    for (const cJSON *f = obj->child; f; f = f->next) {
        bool ok = false;
        for (size_t i = 0; allowed[i] && !ok; i++) ok = strcmp(f->string, allowed[i]) == 0;
        if (!ok) {
            char list[160] = "";
            for (size_t i = 0; allowed[i]; i++) {
                strncat(list, i ? ", " : "", sizeof list - strlen(list) - 1);
                strncat(list, allowed[i], sizeof list - strlen(list) - 1);
            }
            *rep = mc_reply_error(400, "InvalidRequest", "%s: unknown field \"%s\" (expected %s)",
                                  what, f->string, list);
            return true;
        }
    }
    return false;
}

/* ---------------------------------------------------------------- faults */

static mc_reply faults_list(mc_server *s, csl_http_req *req)
{
    return json_or_oom(200, mc_faults_list(s->faults, csl_wall_ms()));
}

static mc_reply faults_get(mc_server *s, csl_http_req *req)
{
    const char *id = csl_http_param(req, "id");
    cJSON *r = mc_faults_get(s->faults, id, csl_wall_ms());
    if (!r) return mc_reply_error(404, "NotFound", "no fault rule with id \"%s\"", id);
    return mc_reply_json(200, r);
}

static mc_reply faults_delete(mc_server *s, csl_http_req *req)
{
    const char *id = csl_http_param(req, "id");
    if (mc_faults_delete(s->faults, id) < 0)
        return mc_reply_error(404, "NotFound", "no fault rule with id \"%s\"", id);
    return no_content();
}

static mc_reply faults_clear(mc_server *s, csl_http_req *req)
{
    mc_faults_clear(s->faults);
    return no_content();
}

/* Adds every rule or none: a failure deletes those already added. The
 * control lock keeps other control calls from interleaving. */
static mc_reply add_rules(mc_server *s, const cJSON *rules, bool batch)
{
    mc_reply rep;
    cJSON *items = cJSON_CreateArray();
    if (!items) return oom();
    int64_t now = csl_wall_ms();
    size_t i = 0;
    pthread_mutex_lock(&s->ctl_lock);
    for (const cJSON *r = batch ? rules->child : rules; r; r = batch ? r->next : NULL, i++) {
        cJSON *created = NULL;
        char why[512];
        if (mc_faults_add(s->faults, r, now, &created, why, sizeof why, NULL) < 0) {
            for (cJSON *c = items->child; c; c = c->next) {
                const cJSON *id = cJSON_GetObjectItemCaseSensitive(c, "id");
                if (cJSON_IsString(id)) mc_faults_delete(s->faults, id->valuestring);
            }
            pthread_mutex_unlock(&s->ctl_lock);
            cJSON_Delete(items);
            if (batch)
                return mc_reply_error(400, "InvalidRequest", "rules[%zu].%s (no rule was added)", i,
                                      why);
            return mc_reply_error(400, "InvalidRequest", "%s", why);
        }
        if (created) cJSON_AddItemToArray(items, created);
    }
    pthread_mutex_unlock(&s->ctl_lock);
    if (!batch) {
        cJSON *one = cJSON_DetachItemFromArray(items, 0);
        cJSON_Delete(items);
        return json_or_oom(201, one);
    }
    cJSON *root = cJSON_CreateObject();
    if (!root) {
        cJSON_Delete(items);
        return oom();
    }
    cJSON_AddItemToObject(root, "items", items);
    rep = mc_reply_json(201, root);
    return rep;
}

static mc_reply faults_add(mc_server *s, csl_http_req *req)
{
    mc_reply rep;
    cJSON *body = mc_srv_parse_body(req, &rep);
    if (!body) return rep;
    if (!cJSON_IsObject(body)) {
        cJSON_Delete(body);
        return mc_reply_error(400, "InvalidRequest",
                              "request body: expected a rule object or {\"rules\":[…]}");
    }
    const cJSON *rules = cJSON_GetObjectItemCaseSensitive(body, "rules");
    if (rules) {
        if (!cJSON_IsArray(rules) || cJSON_GetArraySize(body) != 1) {
            cJSON_Delete(body);
            return mc_reply_error(400, "InvalidRequest",
                                  "rules: expected {\"rules\":[rule, …]} with nothing else");
        }
        rep = add_rules(s, rules, true);
    } else {
        rep = add_rules(s, body, false);
    }
    cJSON_Delete(body);
    return rep;
}

/* ---------------------------------------------------------------- outage */

static mc_reply outage_start(mc_server *s, csl_http_req *req)
{
    static const char *const fields[] = {"mode", "duration", "path", NULL};
    mc_reply rep;
    cJSON *body = mc_srv_parse_body(req, &rep);
    if (!body) return rep;
    if (!cJSON_IsObject(body)) {
        cJSON_Delete(body);
        return mc_reply_error(400, "InvalidRequest",
                              "request body: expected {\"mode\":\"503|reset|hang\", …}");
    }
    if (unknown_field(body, fields, "outage", &rep)) goto out;

    const cJSON *mode = cJSON_GetObjectItemCaseSensitive(body, "mode");
    const cJSON *duration = cJSON_GetObjectItemCaseSensitive(body, "duration");
    const cJSON *path = cJSON_GetObjectItemCaseSensitive(body, "path");
    const char *m = cJSON_IsString(mode) ? mode->valuestring : NULL;
    char num[16];
    if (cJSON_IsNumber(mode)) {
        snprintf(num, sizeof num, "%g", mode->valuedouble);
        m = num;
    }
    if (!m || (strcmp(m, "503") != 0 && strcmp(m, "reset") != 0 && strcmp(m, "hang") != 0)) {
        rep = mc_reply_error(400, "InvalidRequest", "mode: must be \"503\", \"reset\" or \"hang\"");
        goto out;
    }
    if (duration && !cJSON_IsString(duration)) {
        rep = mc_reply_error(400, "InvalidRequest", "duration: must be a duration like \"30s\"");
        goto out;
    }
    if (path && (!cJSON_IsString(path) || path->valuestring[0] != '/')) {
        rep = mc_reply_error(400, "InvalidRequest",
                             "path: must be a path glob starting with '/' (\"/v1/**\")");
        goto out;
    }

    cJSON *rule = cJSON_CreateObject();
    cJSON *match = cJSON_AddObjectToObject(rule, "match");
    cJSON_AddStringToObject(match, "path", path ? path->valuestring : "/v1/**");
    cJSON *effect = cJSON_AddObjectToObject(rule, "effect");
    if (strcmp(m, "503") == 0) {
        cJSON_AddStringToObject(effect, "type", "error");
        cJSON_AddNumberToObject(effect, "status", 503);
        cJSON_AddStringToObject(effect, "code", "ServiceUnavailable");
        cJSON_AddStringToObject(effect, "message", "the service is unavailable (simulated outage)");
    } else {
        cJSON_AddStringToObject(effect, "type", m);
    }
    if (duration) cJSON_AddStringToObject(rule, "duration", duration->valuestring);

    pthread_mutex_lock(&s->ctl_lock);
    char id[32];
    /* Skip ids a person may have taken by hand. */
    cJSON *taken = NULL;
    do {
        cJSON_Delete(taken);
        snprintf(id, sizeof id, "outage-%u", ++s->outage_seq);
        taken = mc_faults_get(s->faults, id, csl_wall_ms());
    } while (taken);
    cJSON_AddStringToObject(rule, "id", id);
    cJSON *created = NULL;
    char why[512];
    if (mc_faults_add(s->faults, rule, csl_wall_ms(), &created, why, sizeof why, NULL) < 0)
        rep = mc_reply_error(400, "InvalidRequest", "%s", why);
    else
        rep = json_or_oom(201, created);
    pthread_mutex_unlock(&s->ctl_lock);
    cJSON_Delete(rule);
out:
    cJSON_Delete(body);
    return rep;
}

static mc_reply outage_end(mc_server *s, csl_http_req *req)
{
    pthread_mutex_lock(&s->ctl_lock);
    cJSON *list = mc_faults_list(s->faults, csl_wall_ms());
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(list, "items");
    for (const cJSON *r = items ? items->child : NULL; r; r = r->next) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(r, "id");
        if (cJSON_IsString(id) && strncmp(id->valuestring, "outage-", 7) == 0)
            mc_faults_delete(s->faults, id->valuestring);
    }
    pthread_mutex_unlock(&s->ctl_lock);
    bool ok = list != NULL;
    cJSON_Delete(list);
    return ok ? no_content() : oom();
}

/* ---------------------------------------------------------------- cloud */

static mc_reply chaos_crash(mc_server *s, csl_http_req *req)
{
    size_t len = 0;
    const char *body = csl_http_body(req, &len);
    return mc_ctl_crash(s->cloud, body, len, csl_wall_ms());
}

static mc_reply timings_get(mc_server *s, csl_http_req *req)
{
    return mc_ctl_get_timings(s->cloud);
}

static mc_reply timings_put(mc_server *s, csl_http_req *req)
{
    size_t len = 0;
    const char *body = csl_http_body(req, &len);
    return mc_ctl_set_timings(s->cloud, body, len);
}

static mc_reply capacity_get(mc_server *s, csl_http_req *req)
{
    return mc_ctl_get_capacity(s->cloud, csl_wall_ms());
}

static mc_reply capacity_put(mc_server *s, csl_http_req *req)
{
    size_t len = 0;
    const char *body = csl_http_body(req, &len);
    return mc_ctl_set_capacity(s->cloud, body, len);
}

static mc_reply state_dump(mc_server *s, csl_http_req *req)
{
    return mc_ctl_dump(s->cloud, csl_wall_ms());
}

static mc_reply stats(mc_server *s, csl_http_req *req)
{
    return json_or_oom(200, mc_srv_stats(s));
}

static mc_reply reset(mc_server *s, csl_http_req *req)
{
    pthread_mutex_lock(&s->ctl_lock);
    mc_cloud_reset(s->cloud);
    mc_faults_clear(s->faults);
    mc_journal_clear(s->journal);
    mc_srv_journal_cleared(s);
    mc_tokens_restore(s->tokens);
    pthread_mutex_unlock(&s->ctl_lock);
    return no_content();
}

/* ---------------------------------------------------------------- tokens */

static mc_reply tokens_list(mc_server *s, csl_http_req *req)
{
    return json_or_oom(200, mc_tokens_list(s->tokens));
}

static mc_reply tokens_add(mc_server *s, csl_http_req *req)
{
    static const char *const fields[] = {"token", "access", NULL};
    mc_reply rep;
    cJSON *body = mc_srv_parse_body(req, &rep);
    if (!body) return rep;
    if (!cJSON_IsObject(body)) {
        rep = mc_reply_error(400, "InvalidRequest",
                             "request body: expected {\"token\":\"…\",\"access\":\"read-write\"}");
        goto out;
    }
    if (unknown_field(body, fields, "token", &rep)) goto out;
    const cJSON *tok = cJSON_GetObjectItemCaseSensitive(body, "token");
    const cJSON *acc = cJSON_GetObjectItemCaseSensitive(body, "access");
    const char *why = cJSON_IsString(tok) ? mc_token_invalid(tok->valuestring) : "must be a string";
    if (why) {
        rep = mc_reply_error(400, "InvalidRequest", "token: %s", why);
        goto out;
    }
    mc_access a = MC_ACCESS_READ_WRITE;
    if (acc && (!cJSON_IsString(acc) || mc_access_parse(acc->valuestring, &a) < 0)) {
        rep = mc_reply_error(400, "InvalidRequest",
                             "access: must be \"read-write\" or \"read-only\"");
        goto out;
    }
    int added = mc_tokens_put(s->tokens, tok->valuestring, a);
    if (added < 0) {
        rep = oom();
        goto out;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "token", tok->valuestring);
    cJSON_AddStringToObject(o, "access", mc_access_name(a));
    rep = json_or_oom(added ? 201 : 200, o);
out:
    cJSON_Delete(body);
    return rep;
}

static mc_reply tokens_delete(mc_server *s, csl_http_req *req)
{
    const char *tok = csl_http_param(req, "token");
    if (mc_tokens_remove(s->tokens, tok) < 0)
        return mc_reply_error(404, "NotFound", "no such token");
    return no_content();
}

/* ---------------------------------------------------------------- journal */

/* Parses the filter arguments; on error *rep is the 400. */
static int journal_filter(csl_http_req *req, mc_journal_filter *f, mc_kv **q, mc_reply *rep)
{
    size_t n = 0;
    if (mc_srv_query(req, q, &n) < 0) {
        *rep = oom();
        return -1;
    }
    char why[256];
    if (mc_journal_filter_parse(f, *q, n, why, sizeof why) < 0) {
        *rep = mc_reply_error(400, "InvalidRequest", "%s", why);
        return -1;
    }
    return 0;
}

static mc_reply journal_query(mc_server *s, csl_http_req *req)
{
    mc_journal_filter f;
    mc_kv *q = NULL;
    mc_reply rep;
    if (journal_filter(req, &f, &q, &rep) == 0)
        rep = json_or_oom(200, mc_journal_query(s->journal, &f));
    free(q);
    return rep;
}

static mc_reply journal_count(mc_server *s, csl_http_req *req)
{
    mc_journal_filter f;
    mc_kv *q = NULL;
    mc_reply rep;
    if (journal_filter(req, &f, &q, &rep) == 0) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "count", (double)mc_journal_count(s->journal, &f));
        rep = json_or_oom(200, o);
    }
    free(q);
    return rep;
}

static mc_reply journal_clear(mc_server *s, csl_http_req *req)
{
    mc_journal_clear(s->journal);
    mc_srv_journal_cleared(s);
    return no_content();
}

/* ---------------------------------------------------------------- routing */

static const struct {
    const char *method;
    const char *pattern;
    ctl_fn fn;
} ctl_table[] = {
    {"GET", "/_mock/faults", faults_list},
    {"POST", "/_mock/faults", faults_add},
    {"DELETE", "/_mock/faults", faults_clear},
    {"GET", "/_mock/faults/{id}", faults_get},
    {"DELETE", "/_mock/faults/{id}", faults_delete},
    {"POST", "/_mock/outage", outage_start},
    {"DELETE", "/_mock/outage", outage_end},
    {"POST", "/_mock/chaos/crash", chaos_crash},
    {"GET", "/_mock/timings", timings_get},
    {"PUT", "/_mock/timings", timings_put},
    {"GET", "/_mock/capacity", capacity_get},
    {"PUT", "/_mock/capacity", capacity_put},
    {"GET", "/_mock/tokens", tokens_list},
    {"POST", "/_mock/tokens", tokens_add},
    {"DELETE", "/_mock/tokens/{token}", tokens_delete},
    {"GET", "/_mock/journal", journal_query},
    {"GET", "/_mock/journal/count", journal_count},
    {"DELETE", "/_mock/journal", journal_clear},
    {"GET", "/_mock/stats", stats},
    {"GET", "/_mock/state", state_dump},
    {"POST", "/_mock/reset", reset},
};
#define CTL_ROUTES (sizeof ctl_table / sizeof ctl_table[0])

static void ctl_handler(csl_http_req *req, void *route_data)
{
    mc_ctl_route *rt = route_data;
    mc_server *s = rt->s;
    if (s->cfg.admin_token) {
        char buf[MC_TOKEN_MAX + 1];
        const char *tok = mc_srv_bearer(req, buf, sizeof buf);
        if (!tok || strcmp(tok, s->cfg.admin_token) != 0) {
            csl_http_set_header(req, "WWW-Authenticate", "Bearer");
            mc_srv_record(s, req, 401);
            csl_http_respond_error(req, 401, "Unauthorized",
                                   tok ? "the admin token is not valid"
                                       : "the control API needs \"Authorization: Bearer "
                                         "<admin token>\"");
            return;
        }
    }
    mc_reply rep = rt->fn(s, req);
    const char *m = csl_http_method(req);
    if (strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0) {
        mc_srv_persist(s);
        mc_srv_kick(s);
    }
    mc_srv_record(s, req, rep.status);
    mc_srv_send(req, &rep);
}

int mc_control_register(mc_server *s)
{
    s->ctl_routes = calloc(CTL_ROUTES, sizeof *s->ctl_routes);
    if (!s->ctl_routes) return -1;
    for (size_t i = 0; i < CTL_ROUTES; i++) {
        s->ctl_routes[i] = (mc_ctl_route){s, ctl_table[i].fn};
        if (csl_httpd_route(s->httpd, ctl_table[i].method, ctl_table[i].pattern, "Control",
                            ctl_handler, &s->ctl_routes[i]) < 0)
            return -1;
    }
    return 0;
}

void mc_control_free(mc_server *s)
{
    free(s->ctl_routes);
    s->ctl_routes = NULL;
}
