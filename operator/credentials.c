/* credentials.c — the cloud token, from the credentials Secret's "token"
 * key into the cloud client: the operator's default Secret
 * (--cloud-credentials-secret) for the shared client, and, for objects
 * with spec.credentialsSecretRef, their own Secret (in their namespace)
 * for a client of its own.
 *
 * One idea: every Secret is watched (an informer field-selected by name),
 * so a rotated token reaches csl_cloud_set_token without a restart; a
 * missing or unusable one is a state the reconciler turns into
 * CloudAuthorized=False, never an exit. A referenced Secret gets its
 * informer and client the first time an object names it, and keeps them
 * until the operator stops. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csl/log.h"
#include "manager.h"

/* A Secret named by spec.credentialsSecretRef, with the client that uses
 * its token. state and detail are guarded by m->creds.mu. */
struct op_secret_ref {
    struct op_secret_ref *next;
    op_mgr *m;
    char ns[OP_NS_LEN];
    char name[OP_SECRET_LEN];
    csl_cloud *cloud;
    csl_informer *inf;
    op_creds state;
    char detail[256];
};

static int b64val(int c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Standard base64 (padding optional); NULL when s is not base64. */
static char *b64decode(const char *s, size_t *outlen)
{
    size_t n = strlen(s);
    char *out = malloc(n / 4 * 3 + 4);
    if (!out) return NULL;
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '=') break;
        int v = b64val((unsigned char)s[i]);
        if (v < 0) {
            free(out);
            return NULL;
        }
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    out[o] = '\0';
    *outlen = o;
    return out;
}

/* Reads secret's token into cloud. Returns the state; detail says why it
 * is not OK (who names the Secret: `what`). */
static op_creds read_token(csl_cloud *cloud, const cJSON *secret, const char *ns, const char *name,
                           const char *what, char *detail, size_t detailsz)
{
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(secret, "data");
    const cJSON *tok = cJSON_GetObjectItemCaseSensitive(data, "token");
    detail[0] = '\0';
    if (!secret || !cJSON_IsString(tok)) {
        snprintf(detail, detailsz,
                 secret ? "Secret %s/%s (%s) has no key \"token\""
                        : "Secret %s/%s (%s) does not exist",
                 ns, name, what);
        csl_cloud_set_token(cloud, NULL);
        return OP_CREDS_MISSING;
    }
    size_t len = 0;
    char *token = b64decode(tok->valuestring, &len);
    /* A trailing newline is what `echo tok | base64` leaves: not a mistake
     * worth refusing. */
    while (token && len && (token[len - 1] == '\n' || token[len - 1] == '\r')) token[--len] = '\0';
    bool bad = !token || !len || strlen(token) != len;
    for (size_t i = 0; !bad && i < len; i++)
        if ((unsigned char)token[i] < 0x21 || (unsigned char)token[i] == 0x7f) bad = true;
    if (bad || csl_cloud_set_token(cloud, token) < 0) {
        snprintf(detail, detailsz,
                 "Secret %s/%s (%s) key \"token\" is empty, not base64, or holds blanks or "
                 "control characters",
                 ns, name, what);
        csl_cloud_set_token(cloud, NULL);
        free(token);
        return OP_CREDS_MALFORMED;
    }
    free(token);
    return OP_CREDS_OK;
}

/* Stores a new state; true when it changed. A rotation (OK to OK) counts
 * as a change: objects refused with the old token get a pass at once. */
static bool store(op_mgr *m, op_creds *state, char *dst, size_t dstsz, op_creds st,
                  const char *detail)
{
    pthread_mutex_lock(&m->creds.mu);
    bool changed = st == OP_CREDS_OK || *state != st || strcmp(dst, detail) != 0;
    *state = st;
    snprintf(dst, dstsz, "%s", detail);
    if (changed) m->creds.version++;
    pthread_mutex_unlock(&m->creds.mu);
    return changed;
}

static void log_state(op_creds st, bool changed, const char *secret, const char *detail)
{
    if (!changed) return;
    if (st == OP_CREDS_OK)
        csl_log(CSL_LOG_INFO, "cloud credentials loaded", "secret", secret, NULL);
    else
        csl_log(CSL_LOG_WARN,
                st == OP_CREDS_MISSING ? "cloud credentials missing" : "cloud credentials unusable",
                "detail", detail, NULL);
}

bool op_credentials_apply(op_mgr *m, const cJSON *secret)
{
    const op_options *o = m->opt;
    char detail[256];
    op_creds st = read_token(m->cloud, secret, o->creds_ns, o->creds_name,
                             "--cloud-credentials-secret", detail, sizeof detail);
    bool changed = store(m, &m->creds.state, m->creds.detail, sizeof m->creds.detail, st, detail);
    log_state(st, changed, o->creds_name, detail);
    return changed;
}

op_creds op_credentials_get(op_mgr *m, char *detail, size_t detailsz)
{
    pthread_mutex_lock(&m->creds.mu);
    op_creds st = m->creds.state;
    if (detail && detailsz) snprintf(detail, detailsz, "%s", m->creds.detail);
    pthread_mutex_unlock(&m->creds.mu);
    return st;
}

/* ---------------------------------------------------------------- per object */

static void ref_apply(struct op_secret_ref *r, const cJSON *secret)
{
    char detail[256];
    op_creds st = read_token(r->cloud, secret, r->ns, r->name, "spec.credentialsSecretRef", detail,
                             sizeof detail);
    bool changed = store(r->m, &r->state, r->detail, sizeof r->detail, st, detail);
    log_state(st, changed, r->name, detail);
    if (changed) op_requeue_all(r->m);
}

static void ref_add(const cJSON *obj, void *ctx)
{
    ref_apply(ctx, obj);
}

static void ref_update(const cJSON *old_obj, const cJSON *new_obj, void *ctx)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(old_obj, "data");
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(new_obj, "data");
    if (old_obj == new_obj || (a && b && cJSON_Compare(a, b, true))) return; /* a resync */
    ref_apply(ctx, new_obj);
}

static void ref_delete(const cJSON *obj, bool unknown, void *ctx)
{
    ref_apply(ctx, NULL);
}

static void ref_free(struct op_secret_ref *r)
{
    if (!r) return;
    if (r->inf) {
        csl_informer_stop(r->inf);
        csl_informer_free(r->inf);
    }
    csl_cloud_free(r->cloud);
    free(r);
}

static const csl_kube_resource res_secrets = {"", "v1", "secrets", true};

/* A client and a watch for Secret ns/name; waits a little for the first
 * read. NULL (detail says why) when either cannot be made. Called with
 * m->refs_mu held; the informer's handlers never take it. */
static struct op_secret_ref *ref_new(op_mgr *m, const char *ns, const char *name, char *detail,
                                     size_t detailsz)
{
    struct op_secret_ref *r = calloc(1, sizeof *r);
    char err[512] = "out of memory";
    if (!r) goto fail;
    r->m = m;
    snprintf(r->ns, sizeof r->ns, "%s", ns);
    snprintf(r->name, sizeof r->name, "%s", name);
    r->state = OP_CREDS_MISSING;
    snprintf(r->detail, sizeof r->detail,
             "Secret %s/%s (spec.credentialsSecretRef) has not been read yet", ns, name);
    csl_cloud_options co = {.user_agent = "cloudserver-operator/" OP_VERSION,
                            .timeout_ms = (long)m->opt->cloud_timeout_ms,
                            .metrics = m->metrics};
    r->cloud = csl_cloud_new(m->opt->cloud_endpoint, &co, err, sizeof err);
    if (!r->cloud) goto fail;
    char fs[OP_SECRET_LEN + 32];
    snprintf(fs, sizeof fs, "metadata.name=%s", name);
    csl_informer_options io;
    memset(&io, 0, sizeof io);
    io.reflector.resource = res_secrets;
    io.reflector.namespace = r->ns;
    io.reflector.field_selector = fs;
    r->inf = csl_informer_new(m->kube, &io, err, sizeof err);
    csl_informer_handler h = {ref_add, ref_update, ref_delete, r};
    if (!r->inf) goto fail;
    if (csl_informer_add_handler(r->inf, &h) < 0) {
        snprintf(err, sizeof err, "cannot add a handler");
        goto fail;
    }
    if (csl_informer_start(r->inf, err, sizeof err) < 0) goto fail;
    if (!csl_informer_wait_synced(r->inf, 5000))
        csl_log(CSL_LOG_WARN, "the credentials Secret is not read yet; objects naming it wait",
                "namespace", ns, "secret", name, NULL);
    csl_log(CSL_LOG_INFO, "watching a credentials Secret named by spec.credentialsSecretRef",
            "namespace", ns, "secret", name, NULL);
    return r;
fail:
    snprintf(detail, detailsz, "Secret %s/%s (spec.credentialsSecretRef) cannot be watched: %s", ns,
             name, err);
    csl_log(CSL_LOG_WARN, "cannot watch a credentials Secret", "namespace", ns, "secret", name,
            "error", err, NULL);
    ref_free(r);
    return NULL;
}

csl_cloud *op_credentials_for(op_mgr *m, const op_object *o, op_creds *state, char *detail,
                              size_t detailsz)
{
    const char *name = o->spec.credentials_secret;
    if (!name[0]) {
        *state = op_credentials_get(m, detail, detailsz);
        return m->cloud;
    }
    pthread_mutex_lock(&m->refs_mu);
    struct op_secret_ref *r = m->refs;
    while (r && (strcmp(r->ns, o->ns) != 0 || strcmp(r->name, name) != 0)) r = r->next;
    if (!r && (r = ref_new(m, o->ns, name, detail, detailsz)) != NULL) {
        r->next = m->refs;
        m->refs = r;
    }
    pthread_mutex_unlock(&m->refs_mu);
    if (!r) {
        *state = OP_CREDS_MISSING;
        return m->cloud;
    }
    pthread_mutex_lock(&m->creds.mu);
    *state = r->state;
    if (detail && detailsz) snprintf(detail, detailsz, "%s", r->detail);
    pthread_mutex_unlock(&m->creds.mu);
    return r->cloud;
}

void op_credentials_stop(op_mgr *m)
{
    pthread_mutex_lock(&m->refs_mu);
    struct op_secret_ref *r = m->refs;
    m->refs = NULL;
    pthread_mutex_unlock(&m->refs_mu);
    while (r) {
        struct op_secret_ref *next = r->next;
        ref_free(r);
        r = next;
    }
}
