/* config.c — mockcloud's start-up YAML (--config): seed, cloud, faults,
 * tokens.
 *
 * Design idea: load and apply are two steps because the seed in the file
 * must be known before the cloud and the fault engine are created, while
 * the rest is applied to them. Every error keeps the YAML node it is about,
 * so the person reads "FILE:LINE:COL: what is wrong". */
#include "server_priv.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const top_keys = "seed, cloud, faults or tokens";

/* "FILE:LINE:COL: message" at node's value (or key, with at_key). */
static void pos_err(const mc_startup *st, const cJSON *node, bool at_key, char *err, size_t errsz,
                    const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static void pos_err(const mc_startup *st, const cJSON *node, bool at_key, char *err, size_t errsz,
                    const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int line = 0, col = 0;
    bool found = node && (at_key ? csl_yaml_key_pos(st->yaml, node, &line, &col)
                                 : csl_yaml_pos(st->yaml, node, &line, &col));
    if (found)
        snprintf(err, errsz, "%s:%d:%d: %s", csl_yaml_name(st->yaml), line, col, msg);
    else
        snprintf(err, errsz, "%s: %s", csl_yaml_name(st->yaml), msg);
}

/* A seed is a whole number 0..2^53 (exact in YAML's float), or a string of
 * digits for the full 64-bit range. */
static int parse_seed(mc_startup *st, const cJSON *node, char *err, size_t errsz)
{
    if (cJSON_IsNumber(node)) {
        double d = node->valuedouble;
        if (d < 0 || d > 9007199254740992.0 || floor(d) != d) {
            pos_err(st, node, false, err, errsz,
                    "seed: must be a whole number 0..2^53 (quote larger seeds: \"12345…\")");
            return -1;
        }
        st->seed = (uint64_t)d;
        st->has_seed = true;
        return 0;
    }
    if (cJSON_IsString(node)) {
        const char *s = node->valuestring;
        char *end = NULL;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (!*s || *s == '-' || *s == '+' || *end || errno) {
            pos_err(st, node, false, err, errsz,
                    "seed: \"%.40s\" is not an unsigned 64-bit integer", s);
            return -1;
        }
        st->seed = v;
        st->has_seed = true;
        return 0;
    }
    pos_err(st, node, false, err, errsz, "seed: must be an unsigned integer");
    return -1;
}

int mc_config_load(mc_startup *st, const char *path, char *err, size_t errsz)
{
    memset(st, 0, sizeof *st);
    csl_yaml_err ye;
    st->yaml = csl_yaml_load_file(path, &ye);
    if (!st->yaml) {
        csl_yaml_err_format(&ye, err, errsz);
        return -1;
    }
    size_t ndocs = csl_yaml_count(st->yaml);
    if (ndocs > 1) {
        pos_err(st, csl_yaml_doc(st->yaml, 1), false, err, errsz,
                "expected one YAML document, found %zu", ndocs);
        return -1;
    }
    cJSON *root = ndocs ? csl_yaml_doc(st->yaml, 0) : NULL;
    if (!root || cJSON_IsNull(root)) return 0; /* an empty file configures nothing */
    if (!cJSON_IsObject(root)) {
        pos_err(st, root, false, err, errsz, "the top level must be a mapping with keys %s",
                top_keys);
        return -1;
    }
    for (cJSON *k = root->child; k; k = k->next) {
        if (strcmp(k->string, "seed") == 0) {
            if (parse_seed(st, k, err, errsz) < 0) return -1;
        } else if (strcmp(k->string, "cloud") == 0) {
            if (!cJSON_IsObject(k) && !cJSON_IsNull(k)) {
                pos_err(st, k, false, err, errsz,
                        "cloud: must be a mapping (timings, capacity, zones, images)");
                return -1;
            }
        } else if (strcmp(k->string, "faults") == 0 || strcmp(k->string, "tokens") == 0) {
            if (!cJSON_IsArray(k) && !cJSON_IsNull(k)) {
                pos_err(st, k, false, err, errsz, "%s: must be a list", k->string);
                return -1;
            }
        } else {
            pos_err(st, k, true, err, errsz, "unknown key \"%s\": expected %s", k->string,
                    top_keys);
            return -1;
        }
    }
    st->root = root;
    return 0;
}

static int apply_tokens(mc_startup *st, const cJSON *list, mc_tokens *tokens, char *err,
                        size_t errsz)
{
    size_t i = 0;
    for (const cJSON *t = list ? list->child : NULL; t; t = t->next, i++) {
        const char *tok = NULL;
        mc_access access = MC_ACCESS_READ_WRITE;
        if (cJSON_IsString(t)) {
            char why[320];
            if (mc_tokens_put_flag(tokens, t->valuestring, why, sizeof why) < 0) {
                pos_err(st, t, false, err, errsz, "tokens[%zu]: %s", i, why);
                return -1;
            }
            continue;
        }
        if (!cJSON_IsObject(t)) {
            pos_err(st, t, false, err, errsz,
                    "tokens[%zu]: must be a mapping {token: T, access: read-write|read-only}", i);
            return -1;
        }
        for (const cJSON *f = t->child; f; f = f->next) {
            if (strcmp(f->string, "token") == 0) {
                if (!cJSON_IsString(f)) {
                    pos_err(st, f, false, err, errsz, "tokens[%zu].token: must be a string", i);
                    return -1;
                }
                tok = f->valuestring;
            } else if (strcmp(f->string, "access") == 0) {
                if (!cJSON_IsString(f) || mc_access_parse(f->valuestring, &access) < 0) {
                    pos_err(st, f, false, err, errsz,
                            "tokens[%zu].access: must be read-write or read-only", i);
                    return -1;
                }
            } else {
                pos_err(st, f, true, err, errsz,
                        "tokens[%zu]: unknown field \"%s\": expected token or access", i,
                        f->string);
                return -1;
            }
        }
        if (!tok) {
            pos_err(st, t, false, err, errsz, "tokens[%zu]: \"token\" is missing", i);
            return -1;
        }
        const char *why = mc_token_invalid(tok);
        if (why) {
            pos_err(st, cJSON_GetObjectItemCaseSensitive(t, "token"), false, err, errsz,
                    "tokens[%zu].token: %s", i, why);
            return -1;
        }
        if (mc_tokens_put(tokens, tok, access) < 0) {
            snprintf(err, errsz, "out of memory");
            return -1;
        }
    }
    return 0;
}

/* The cloud section with "capacity: {hk-1a: 10}" rewritten to the control
 * API's form "capacity: {zones: {hk-1a: 10}}", which mc_cloud_configure
 * reads. Built from cJSON references, so the nodes an error points at are
 * still the YAML's own (and keep their positions). NULL when no rewrite is
 * needed or on allocation failure (then the section goes as it is). */
static cJSON *cloud_with_zones(const cJSON *cloud)
{
    const cJSON *cap = cJSON_GetObjectItemCaseSensitive(cloud, "capacity");
    if (!cJSON_IsObject(cap) || cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(cap, "zones")))
        return NULL;
    cJSON *out = cJSON_CreateObject();
    bool ok = out != NULL;
    for (const cJSON *m = cloud->child; ok && m; m = m->next) {
        if (m != cap) {
            ok = cJSON_AddItemReferenceToObject(out, m->string, (cJSON *)m);
            continue;
        }
        cJSON *wrap = cJSON_AddObjectToObject(out, "capacity");
        ok = wrap && cJSON_AddItemReferenceToObject(wrap, "zones", (cJSON *)cap);
    }
    if (!ok) {
        cJSON_Delete(out);
        return NULL;
    }
    return out;
}

int mc_config_apply(mc_startup *st, mc_server *s, int64_t now_ms, char *err, size_t errsz)
{
    if (!st->root) return 0;
    char why[512];
    const cJSON *cloud = cJSON_GetObjectItemCaseSensitive(st->root, "cloud");
    if (cJSON_IsObject(cloud)) {
        const cJSON *bad = NULL;
        cJSON *rewritten = cloud_with_zones(cloud);
        int rc = mc_cloud_configure(s->cloud, rewritten ? rewritten : cloud, why, sizeof why, &bad);
        /* A reference node is ours, not the YAML's: report the section. */
        if (bad && !csl_yaml_pos(st->yaml, bad, &(int){0}, &(int){0})) bad = NULL;
        cJSON_Delete(rewritten);
        if (rc < 0) {
            pos_err(st, bad ? bad : cloud, false, err, errsz, "cloud: %s", why);
            return -1;
        }
    }
    const cJSON *faults = cJSON_GetObjectItemCaseSensitive(st->root, "faults");
    size_t i = 0;
    for (const cJSON *r = cJSON_IsArray(faults) ? faults->child : NULL; r; r = r->next, i++) {
        const cJSON *bad = NULL;
        if (mc_faults_add(s->faults, r, now_ms, NULL, why, sizeof why, &bad) < 0) {
            pos_err(st, bad ? bad : r, false, err, errsz, "faults[%zu]: %s", i, why);
            return -1;
        }
    }
    const cJSON *tokens = cJSON_GetObjectItemCaseSensitive(st->root, "tokens");
    if (cJSON_IsArray(tokens) && apply_tokens(st, tokens, s->tokens, err, errsz) < 0) return -1;
    return 0;
}

void mc_config_free(mc_startup *st)
{
    csl_yaml_free(st->yaml);
    memset(st, 0, sizeof *st);
}
