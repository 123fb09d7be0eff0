/* credentials.c — the cloud token, from the credentials Secret's "token"
 * key into the cloud client.
 *
 * One idea: the Secret is watched (an informer field-selected by name), so a
 * rotated token reaches csl_cloud_set_token without a restart; a missing or
 * unusable one is a state the reconciler turns into CloudAuthorized=False,
 * never an exit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csl/log.h"
#include "manager.h"

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

static void set_state(op_mgr *m, op_creds st, const char *detail, bool *changed)
{
    pthread_mutex_lock(&m->creds.mu);
    if (m->creds.state != st || strcmp(m->creds.detail, detail) != 0) {
        m->creds.state = st;
        snprintf(m->creds.detail, sizeof m->creds.detail, "%s", detail);
        m->creds.version++;
        *changed = true;
    }
    pthread_mutex_unlock(&m->creds.mu);
}

bool op_credentials_apply(op_mgr *m, const cJSON *secret)
{
    const op_options *o = m->opt;
    char detail[256];
    bool changed = false;
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(secret, "data");
    const cJSON *tok = cJSON_GetObjectItemCaseSensitive(data, "token");
    if (!secret || !cJSON_IsString(tok)) {
        snprintf(detail, sizeof detail,
                 secret ? "Secret %s/%s has no key \"token\"" : "Secret %s/%s does not exist",
                 o->creds_ns, o->creds_name);
        csl_cloud_set_token(m->cloud, NULL);
        set_state(m, OP_CREDS_MISSING, detail, &changed);
        if (changed) csl_log(CSL_LOG_WARN, "cloud credentials missing", "detail", detail, NULL);
        return changed;
    }
    size_t len = 0;
    char *token = b64decode(tok->valuestring, &len);
    /* A trailing newline is what `echo tok | base64` leaves: not a mistake
     * worth refusing. */
    while (token && len && (token[len - 1] == '\n' || token[len - 1] == '\r')) token[--len] = '\0';
    bool bad = !token || !len || strlen(token) != len;
    for (size_t i = 0; !bad && i < len; i++)
        if ((unsigned char)token[i] < 0x21 || (unsigned char)token[i] == 0x7f) bad = true;
    if (bad || csl_cloud_set_token(m->cloud, token) < 0) {
        snprintf(detail, sizeof detail,
                 "Secret %s/%s key \"token\" is empty, not base64, or holds blanks or control "
                 "characters",
                 o->creds_ns, o->creds_name);
        csl_cloud_set_token(m->cloud, NULL);
        set_state(m, OP_CREDS_MALFORMED, detail, &changed);
        if (changed) csl_log(CSL_LOG_WARN, "cloud credentials unusable", "detail", detail, NULL);
        free(token);
        return changed;
    }
    /* A rotation counts as a change even when the state stays OK: objects
     * refused with the old token get a pass at once. */
    pthread_mutex_lock(&m->creds.mu);
    m->creds.state = OP_CREDS_OK;
    m->creds.detail[0] = '\0';
    m->creds.version++;
    pthread_mutex_unlock(&m->creds.mu);
    csl_log(CSL_LOG_INFO, "cloud credentials loaded", "secret", o->creds_name, NULL);
    free(token);
    return true;
}

op_creds op_credentials_get(op_mgr *m, char *detail, size_t detailsz)
{
    pthread_mutex_lock(&m->creds.mu);
    op_creds st = m->creds.state;
    if (detail && detailsz) snprintf(detail, detailsz, "%s", m->creds.detail);
    pthread_mutex_unlock(&m->creds.mu);
    return st;
}
