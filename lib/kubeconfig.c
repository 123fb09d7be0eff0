/* kubeconfig.c — where a Kubernetes client's server and credentials come
 * from: kubeconfig files as kubectl merges them, the in-cluster service
 * account, and exec credential plugins (see csl/kube.h).
 *
 * The one idea: never merge into a new tree. Every file of $KUBECONFIG stays
 * loaded with its YAML positions, and a name (context, cluster, user) is
 * looked up in the files in order, the first file that has it winning, which
 * is kubectl's rule for maps; so every error can point at the file, line and
 * column the offending entry came from, and relative paths resolve against
 * the folder of the file that named them. */
#include "csl/kube.h"

#include "csl/buf.h"
#include "csl/clock.h"
#include "csl/log.h"
#include "csl/yaml.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define KC_MAX_FILES 32
#define EXEC_STDOUT_MAX (1024 * 1024)
#define EXEC_STDERR_MAX (16 * 1024)
#define EXEC_DEFAULT_TIMEOUT_MS 60000
#define SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

static const char *const exec_v1 = "client.authentication.k8s.io/v1";
static const char *const exec_v1beta1 = "client.authentication.k8s.io/v1beta1";

/* ------------------------------------------------------------------ small helpers */

static void errf(char *err, size_t errsz, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void errf(char *err, size_t errsz, const char *fmt, ...)
{
    if (!err || errsz == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errsz, fmt, ap);
    va_end(ap);
}

static int b64val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Standard base64 with padding; line breaks and blanks are skipped (a
 * folded YAML scalar may carry them). Returns a NUL-terminated malloc'd
 * buffer, or NULL when s is not base64 (or on allocation failure, *oom). */
static char *b64_decode(const char *s, size_t *outlen, bool *oom)
{
    size_t n = strlen(s);
    char *out = malloc(n / 4 * 3 + 4);
    *oom = !out;
    if (!out) return NULL;
    unsigned acc = 0;
    int bits = 0, pad = 0;
    size_t o = 0, sym = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '\n' || *p == '\r' || *p == ' ' || *p == '\t') continue;
        sym++;
        if (*p == '=') {
            pad++;
            continue;
        }
        int v = b64val(*p);
        if (v < 0 || pad) goto bad;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    if (sym == 0 || sym % 4 != 0 || pad > 2) goto bad;
    out[o] = 0;
    *outlen = o;
    return out;
bad:
    free(out);
    return NULL;
}

static char *b64_encode(const char *p, size_t n)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc((n + 2) / 3 * 4 + 1);
    if (!out) return NULL;
    size_t o = 0, i = 0;
    const unsigned char *u = (const unsigned char *)p;
    for (; i + 2 < n; i += 3) {
        unsigned v = (unsigned)u[i] << 16 | (unsigned)u[i + 1] << 8 | u[i + 2];
        out[o++] = tbl[v >> 18];
        out[o++] = tbl[(v >> 12) & 63];
        out[o++] = tbl[(v >> 6) & 63];
        out[o++] = tbl[v & 63];
    }
    if (i < n) {
        unsigned v = (unsigned)u[i] << 16 | (i + 1 < n ? (unsigned)u[i + 1] << 8 : 0);
        out[o++] = tbl[v >> 18];
        out[o++] = tbl[(v >> 12) & 63];
        out[o++] = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    out[o] = 0;
    return out;
}

static char *read_file(const char *path, size_t max, size_t *len, int *err_no)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        *err_no = errno;
        return NULL;
    }
    csl_buf b = CSL_BUF_INIT;
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (b.len + n > max) {
            fclose(f);
            csl_buf_free(&b);
            *err_no = EFBIG;
            return NULL;
        }
        csl_buf_append(&b, chunk, n);
    }
    bool ferr = ferror(f);
    fclose(f);
    if (ferr || b.oom) {
        *err_no = ferr ? EIO : ENOMEM;
        csl_buf_free(&b);
        return NULL;
    }
    *len = b.len;
    if (!b.data) return strdup("");
    return csl_buf_steal(&b);
}

/* ------------------------------------------------------------------ config copy/free */

static void free_strv(char **v)
{
    if (!v) return;
    for (char **p = v; *p; p++) free(*p);
    free(v);
}

void csl_kube_config_free(csl_kube_config *cfg)
{
    if (!cfg) return;
    free(cfg->server);
    free(cfg->tls_server_name);
    free(cfg->ca_file);
    free(cfg->ca_data);
    free(cfg->cert_file);
    free(cfg->cert_data);
    free(cfg->key_file);
    free(cfg->key_data);
    free(cfg->token);
    free(cfg->token_file);
    free(cfg->exec.command);
    free_strv(cfg->exec.args);
    free_strv(cfg->exec.env);
    free(cfg->exec.api_version);
    free(cfg->exec.install_hint);
    free(cfg->namespace);
    free(cfg->context_name);
    free(cfg->source);
    memset(cfg, 0, sizeof *cfg);
}

static bool dup_str(char **dst, const char *src)
{
    *dst = NULL;
    if (!src) return true;
    *dst = strdup(src);
    return *dst != NULL;
}

static bool dup_mem(char **dst, const char *src, size_t len)
{
    *dst = NULL;
    if (!src) return true;
    *dst = malloc(len + 1);
    if (!*dst) return false;
    memcpy(*dst, src, len);
    (*dst)[len] = 0;
    return true;
}

static bool dup_strv(char ***dst, char *const *src)
{
    *dst = NULL;
    if (!src) return true;
    size_t n = 0;
    while (src[n]) n++;
    char **v = calloc(n + 1, sizeof *v);
    if (!v) return false;
    for (size_t i = 0; i < n; i++) {
        if (!(v[i] = strdup(src[i]))) {
            free_strv(v);
            return false;
        }
    }
    *dst = v;
    return true;
}

int csl_kube_config_copy(csl_kube_config *dst, const csl_kube_config *s)
{
    memset(dst, 0, sizeof *dst);
    dst->ca_data_len = s->ca_data_len;
    dst->cert_data_len = s->cert_data_len;
    dst->key_data_len = s->key_data_len;
    dst->insecure = s->insecure;
    dst->exec.interactive = s->exec.interactive;
    dst->exec.provide_cluster_info = s->exec.provide_cluster_info;
    bool ok =
        dup_str(&dst->server, s->server) && dup_str(&dst->tls_server_name, s->tls_server_name) &&
        dup_str(&dst->ca_file, s->ca_file) && dup_mem(&dst->ca_data, s->ca_data, s->ca_data_len) &&
        dup_str(&dst->cert_file, s->cert_file) &&
        dup_mem(&dst->cert_data, s->cert_data, s->cert_data_len) &&
        dup_str(&dst->key_file, s->key_file) &&
        dup_mem(&dst->key_data, s->key_data, s->key_data_len) && dup_str(&dst->token, s->token) &&
        dup_str(&dst->token_file, s->token_file) && dup_str(&dst->exec.command, s->exec.command) &&
        dup_strv(&dst->exec.args, s->exec.args) && dup_strv(&dst->exec.env, s->exec.env) &&
        dup_str(&dst->exec.api_version, s->exec.api_version) &&
        dup_str(&dst->exec.install_hint, s->exec.install_hint) &&
        dup_str(&dst->namespace, s->namespace) && dup_str(&dst->context_name, s->context_name) &&
        dup_str(&dst->source, s->source);
    if (!ok) {
        csl_kube_config_free(dst);
        return -1;
    }
    return 0;
}

void csl_kube_credential_free(csl_kube_credential *c)
{
    if (!c) return;
    free(c->token);
    free(c->cert_data);
    free(c->key_data);
    memset(c, 0, sizeof *c);
}

/* ------------------------------------------------------------------ kubeconfig files */

typedef struct kc_file {
    char *path;
    char *dir; /* folder the file's relative paths start from */
    csl_yaml *y;
    const cJSON *root; /* a mapping, or NULL for an empty file */
} kc_file;

typedef struct kc {
    kc_file files[KC_MAX_FILES];
    size_t n;
    char *err;
    size_t errsz;
} kc;

/* "file:line:col: " + message, or "file: " when node has no position. */
static void kc_errf(kc *c, const kc_file *f, const cJSON *node, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void kc_errf(kc *c, const kc_file *f, const cJSON *node, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int line = 0, col = 0;
    if (f && node && csl_yaml_pos(f->y, node, &line, &col) && line > 0)
        errf(c->err, c->errsz, "%s:%d:%d: %s", f->path, line, col, msg);
    else if (f)
        errf(c->err, c->errsz, "%s: %s", f->path, msg);
    else
        errf(c->err, c->errsz, "%s", msg);
}

static void kc_free(kc *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->files[i].path);
        free(c->files[i].dir);
        csl_yaml_free(c->files[i].y);
    }
    c->n = 0;
}

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash) {
        char cwd[4096];
        return getcwd(cwd, sizeof cwd) ? strdup(cwd) : strdup(".");
    }
    if (slash == path) return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

/* Loads one file; missing files are skipped when optional ($KUBECONFIG). */
static int kc_add(kc *c, const char *path, bool optional)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->files[i].path, path) == 0) return 0; /* listed twice */
    if (optional && access(path, F_OK) != 0) return 0;
    if (c->n == KC_MAX_FILES) {
        errf(c->err, c->errsz, "KUBECONFIG lists more than %d files", KC_MAX_FILES);
        return -1;
    }
    csl_yaml_err ye;
    csl_yaml *y = csl_yaml_load_file(path, &ye);
    if (!y) {
        char msg[600];
        csl_yaml_err_format(&ye, msg, sizeof msg);
        errf(c->err, c->errsz, "cannot load kubeconfig %s", msg);
        return -1;
    }
    kc_file *f = &c->files[c->n];
    memset(f, 0, sizeof *f);
    f->y = y;
    f->path = strdup(path);
    f->dir = dir_of(path);
    c->n++;
    if (!f->path || !f->dir) {
        errf(c->err, c->errsz, "out of memory");
        return -1;
    }
    const cJSON *root = csl_yaml_doc(y, 0);
    if (!root || cJSON_IsNull(root)) return 0; /* an empty file is allowed */
    if (!cJSON_IsObject(root)) {
        kc_errf(c, f, root,
                "a kubeconfig must be a mapping with apiVersion, clusters, contexts and users");
        return -1;
    }
    f->root = root;
    return 0;
}

/* Optional string member; -1 (error set) when present but not a string. */
static int kc_str(kc *c, const kc_file *f, const cJSON *obj, const char *key, const char **out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    *out = NULL;
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsString(v)) {
        kc_errf(c, f, v, "\"%s\" must be a string (quote the value)", key);
        return -1;
    }
    *out = v->valuestring;
    return 0;
}

static int kc_bool(kc *c, const kc_file *f, const cJSON *obj, const char *key, bool *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    *out = false;
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsBool(v)) {
        kc_errf(c, f, v, "\"%s\" must be true or false", key);
        return -1;
    }
    *out = cJSON_IsTrue(v);
    return 0;
}

/* Finds the entry called name in list `section` (clusters, users,
 * contexts) of the first file that has one; returns its inner mapping
 * (entry.<inner>) and the file. 0 found, 1 not found, -1 malformed. */
static int kc_find(kc *c, const char *section, const char *inner, const char *name,
                   const kc_file **fout, const cJSON **out)
{
    for (size_t i = 0; i < c->n; i++) {
        const kc_file *f = &c->files[i];
        if (!f->root) continue;
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(f->root, section);
        if (!list || cJSON_IsNull(list)) continue;
        if (!cJSON_IsArray(list)) {
            kc_errf(c, f, list, "\"%s\" must be a list of {name, %s} entries", section, inner);
            return -1;
        }
        const cJSON *e;
        cJSON_ArrayForEach(e, list)
        {
            const cJSON *n = cJSON_GetObjectItemCaseSensitive(e, "name");
            if (!cJSON_IsObject(e) || !cJSON_IsString(n)) {
                kc_errf(c, f, e,
                        "each entry of \"%s\" needs a \"name\" string and a \"%s\" mapping",
                        section, inner);
                return -1;
            }
            if (strcmp(n->valuestring, name) != 0) continue;
            const cJSON *body = cJSON_GetObjectItemCaseSensitive(e, inner);
            if (body && !cJSON_IsNull(body) && !cJSON_IsObject(body)) {
                kc_errf(c, f, body, "%s \"%s\": \"%s\" must be a mapping", section, name, inner);
                return -1;
            }
            *fout = f;
            *out = body && cJSON_IsObject(body) ? body : e; /* e: an empty entry */
            return 0;
        }
    }
    return 1;
}

static void kc_file_list(const kc *c, char *out, size_t outsz)
{
    size_t o = 0;
    out[0] = 0;
    for (size_t i = 0; i < c->n && o + 1 < outsz; i++) {
        int w = snprintf(out + o, outsz - o, "%s%s", i ? ", " : "", c->files[i].path);
        if (w < 0) break;
        o += (size_t)w;
    }
}

/* Resolves a path field against the file's folder and checks it can be
 * read, naming the entry in the error. */
static int kc_path(kc *c, const kc_file *f, const cJSON *obj, const char *key, const char *what,
                   char **out)
{
    const char *v;
    *out = NULL;
    if (kc_str(c, f, obj, key, &v) != 0) return -1;
    if (!v || !*v) return 0;
    csl_buf b = CSL_BUF_INIT;
    if (v[0] == '/')
        csl_buf_puts(&b, v);
    else if (v[0] == '~' && v[1] == '/' && getenv("HOME"))
        csl_buf_printf(&b, "%s%s", getenv("HOME"), v + 1);
    else
        csl_buf_printf(&b, "%s/%s", f->dir, v);
    char *p = csl_buf_steal(&b);
    if (!p) {
        errf(c->err, c->errsz, "out of memory");
        return -1;
    }
    FILE *fp = fopen(p, "r");
    if (!fp) {
        int e = errno;
        kc_errf(c, f, cJSON_GetObjectItemCaseSensitive(obj, key), "cannot read %s %s \"%s\": %s",
                what, key, p, strerror(e));
        free(p);
        return -1;
    }
    fclose(fp);
    *out = p;
    return 0;
}

static int kc_data(kc *c, const kc_file *f, const cJSON *obj, const char *key, char **out,
                   size_t *len)
{
    const char *v;
    *out = NULL;
    *len = 0;
    if (kc_str(c, f, obj, key, &v) != 0) return -1;
    if (!v || !*v) return 0;
    bool oom;
    *out = b64_decode(v, len, &oom);
    if (!*out) {
        if (oom)
            errf(c->err, c->errsz, "out of memory");
        else
            kc_errf(c, f, cJSON_GetObjectItemCaseSensitive(obj, key),
                    "\"%s\" is not valid base64 (it holds the PEM file's content, base64-encoded)",
                    key);
        return -1;
    }
    return 0;
}

static int kc_exec(kc *c, const kc_file *f, const cJSON *ex, const char *user, csl_kube_exec *out)
{
    const char *cmd, *api, *hint, *mode;
    if (!cJSON_IsObject(ex)) {
        kc_errf(c, f, ex, "user \"%s\": \"exec\" must be a mapping", user);
        return -1;
    }
    if (kc_str(c, f, ex, "command", &cmd) || kc_str(c, f, ex, "apiVersion", &api) ||
        kc_str(c, f, ex, "installHint", &hint) || kc_str(c, f, ex, "interactiveMode", &mode) ||
        kc_bool(c, f, ex, "provideClusterInfo", &out->provide_cluster_info))
        return -1;
    if (!cmd || !*cmd) {
        kc_errf(c, f, ex, "user \"%s\": exec needs a \"command\"", user);
        return -1;
    }
    if (!api || (strcmp(api, exec_v1) != 0 && strcmp(api, exec_v1beta1) != 0)) {
        kc_errf(c, f, api ? cJSON_GetObjectItemCaseSensitive(ex, "apiVersion") : ex,
                "user \"%s\": exec apiVersion must be %s or %s (got %s)", user, exec_v1,
                exec_v1beta1, api ? api : "none");
        return -1;
    }
    if (mode && strcmp(mode, "Never") != 0 && strcmp(mode, "IfAvailable") != 0 &&
        strcmp(mode, "Always") != 0) {
        kc_errf(c, f, cJSON_GetObjectItemCaseSensitive(ex, "interactiveMode"),
                "user \"%s\": interactiveMode must be Never, IfAvailable or Always", user);
        return -1;
    }
    out->interactive = mode && strcmp(mode, "Always") == 0;
    /* A command with a slash but not absolute is relative to the file. */
    csl_buf b = CSL_BUF_INIT;
    if (strchr(cmd, '/') && cmd[0] != '/')
        csl_buf_printf(&b, "%s/%s", f->dir, cmd);
    else
        csl_buf_puts(&b, cmd);
    out->command = csl_buf_steal(&b);
    if (!dup_str(&out->api_version, api) || !dup_str(&out->install_hint, hint) || !out->command)
        goto oom;

    const cJSON *args = cJSON_GetObjectItemCaseSensitive(ex, "args");
    if (args && !cJSON_IsNull(args) && !cJSON_IsArray(args)) {
        kc_errf(c, f, args, "user \"%s\": exec \"args\" must be a list of strings", user);
        return -1;
    }
    size_t n = cJSON_IsArray(args) ? (size_t)cJSON_GetArraySize(args) : 0;
    out->args = calloc(n + 1, sizeof *out->args);
    if (!out->args) goto oom;
    size_t i = 0;
    const cJSON *a;
    const cJSON *arglist = cJSON_IsArray(args) ? args : NULL;
    cJSON_ArrayForEach(a, arglist)
    {
        if (!cJSON_IsString(a)) {
            kc_errf(c, f, a, "user \"%s\": exec args must be strings (quote the value)", user);
            return -1;
        }
        if (!(out->args[i++] = strdup(a->valuestring))) goto oom;
    }

    const cJSON *env = cJSON_GetObjectItemCaseSensitive(ex, "env");
    if (env && !cJSON_IsNull(env) && !cJSON_IsArray(env)) {
        kc_errf(c, f, env, "user \"%s\": exec \"env\" must be a list of {name, value}", user);
        return -1;
    }
    n = cJSON_IsArray(env) ? (size_t)cJSON_GetArraySize(env) : 0;
    out->env = calloc(n + 1, sizeof *out->env);
    if (!out->env) goto oom;
    i = 0;
    const cJSON *envlist = cJSON_IsArray(env) ? env : NULL;
    cJSON_ArrayForEach(a, envlist)
    {
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(a, "name");
        const cJSON *val = cJSON_GetObjectItemCaseSensitive(a, "value");
        if (!cJSON_IsString(nm) || !*nm->valuestring || strchr(nm->valuestring, '=') ||
            !cJSON_IsString(val)) {
            kc_errf(c, f, a,
                    "user \"%s\": each exec env entry needs a \"name\" and a \"value\" "
                    "string",
                    user);
            return -1;
        }
        csl_buf_printf(&b, "%s=%s", nm->valuestring, val->valuestring);
        if (!(out->env[i++] = csl_buf_steal(&b))) goto oom;
    }
    return 0;
oom:
    errf(c->err, c->errsz, "out of memory");
    return -1;
}

static int kc_cluster(kc *c, const kc_file *f, const cJSON *cl, const char *name,
                      csl_kube_config *cfg)
{
    const char *server, *sni;
    if (kc_str(c, f, cl, "server", &server) || kc_str(c, f, cl, "tls-server-name", &sni) ||
        kc_bool(c, f, cl, "insecure-skip-tls-verify", &cfg->insecure))
        return -1;
    if (!server || !*server) {
        kc_errf(c, f, cl, "cluster \"%s\" has no \"server\" (e.g. https://127.0.0.1:6443)", name);
        return -1;
    }
    if (!dup_str(&cfg->server, server) || !dup_str(&cfg->tls_server_name, sni)) goto oom;
    if (kc_data(c, f, cl, "certificate-authority-data", &cfg->ca_data, &cfg->ca_data_len))
        return -1;
    if (!cfg->ca_data && kc_path(c, f, cl, "certificate-authority", "cluster", &cfg->ca_file))
        return -1;
    if (cfg->insecure && (cfg->ca_data || cfg->ca_file))
        csl_log(CSL_LOG_WARN,
                "kubeconfig: cluster has both a CA and insecure-skip-tls-verify; "
                "the CA is ignored",
                "cluster", name, "file", f->path, NULL);
    return 0;
oom:
    errf(c->err, c->errsz, "out of memory");
    return -1;
}

static int kc_user(kc *c, const kc_file *f, const cJSON *u, const char *name, csl_kube_config *cfg)
{
    const cJSON *ap = cJSON_GetObjectItemCaseSensitive(u, "auth-provider");
    if (ap && !cJSON_IsNull(ap)) {
        kc_errf(c, f, ap,
                "user \"%s\": auth-provider is not supported (it was removed from kubectl); use "
                "an exec credential plugin",
                name);
        return -1;
    }
    if (cJSON_GetObjectItemCaseSensitive(u, "username") ||
        cJSON_GetObjectItemCaseSensitive(u, "password"))
        csl_log(CSL_LOG_WARN,
                "kubeconfig: basic authentication (username/password) is not "
                "supported and is ignored",
                "user", name, "file", f->path, NULL);
    const char *tok;
    if (kc_data(c, f, u, "client-certificate-data", &cfg->cert_data, &cfg->cert_data_len) ||
        (!cfg->cert_data && kc_path(c, f, u, "client-certificate", "user", &cfg->cert_file)) ||
        kc_data(c, f, u, "client-key-data", &cfg->key_data, &cfg->key_data_len) ||
        (!cfg->key_data && kc_path(c, f, u, "client-key", "user", &cfg->key_file)) ||
        kc_str(c, f, u, "token", &tok) || kc_path(c, f, u, "tokenFile", "user", &cfg->token_file))
        return -1;
    if (tok && *tok && !(cfg->token = strdup(tok))) goto oom;
    bool cert = cfg->cert_data || cfg->cert_file, key = cfg->key_data || cfg->key_file;
    if (cert != key) {
        kc_errf(c, f, u, "user \"%s\" has a client %s but no client %s", name,
                cert ? "certificate" : "key", cert ? "key" : "certificate");
        return -1;
    }
    const cJSON *ex = cJSON_GetObjectItemCaseSensitive(u, "exec");
    if (ex && !cJSON_IsNull(ex) && kc_exec(c, f, ex, name, &cfg->exec) != 0) return -1;
    return 0;
oom:
    errf(c->err, c->errsz, "out of memory");
    return -1;
}

/* Fills the file list: path, else $KUBECONFIG, else ~/.kube/config. */
static int kc_files(kc *c, const char *path)
{
    if (path && *path) return kc_add(c, path, false);
    const char *env = getenv("KUBECONFIG");
    if (env && *env) {
        char *list = strdup(env);
        if (!list) {
            errf(c->err, c->errsz, "out of memory");
            return -1;
        }
        int rc = 0;
        char *save = NULL;
        for (char *p = strtok_r(list, ":", &save); p && rc == 0; p = strtok_r(NULL, ":", &save))
            rc = kc_add(c, p, true);
        if (rc == 0 && c->n == 0) {
            errf(c->err, c->errsz, "none of the files in KUBECONFIG (%s) exists", env);
            rc = -1;
        }
        free(list);
        return rc;
    }
    const char *home = getenv("HOME");
    if (!home || !*home) {
        errf(c->err, c->errsz, "no kubeconfig: KUBECONFIG and HOME are not set; pass a path");
        return -1;
    }
    char p[4096];
    snprintf(p, sizeof p, "%s/.kube/config", home);
    if (access(p, F_OK) != 0) {
        errf(c->err, c->errsz, "no kubeconfig: %s does not exist and KUBECONFIG is not set", p);
        return -1;
    }
    return kc_add(c, p, false);
}

int csl_kubeconfig_load(const char *path, const char *context, csl_kube_config *out, char *err,
                        size_t errsz)
{
    char dummy[8];
    if (!err || errsz == 0) err = dummy, errsz = sizeof dummy;
    err[0] = 0;
    kc c = {.err = err, .errsz = errsz};
    csl_kube_config cfg = {0};
    char files[1024];
    if (kc_files(&c, path) != 0) goto fail;
    kc_file_list(&c, files, sizeof files);

    /* current-context: the first file that sets one */
    const char *ctx_name = context && *context ? context : NULL;
    for (size_t i = 0; !ctx_name && i < c.n; i++) {
        const char *cc;
        if (!c.files[i].root) continue;
        if (kc_str(&c, &c.files[i], c.files[i].root, "current-context", &cc)) goto fail;
        if (cc && *cc) ctx_name = cc;
    }
    if (!ctx_name) {
        errf(err, errsz,
             "no current-context in %s: set one (kubectl config use-context NAME) or "
             "name a context",
             files);
        goto fail;
    }

    const kc_file *cf, *clf, *uf;
    const cJSON *ctx, *cl, *u;
    int r = kc_find(&c, "contexts", "context", ctx_name, &cf, &ctx);
    if (r < 0) goto fail;
    if (r > 0) {
        errf(err, errsz, "context \"%s\" not found in %s", ctx_name, files);
        goto fail;
    }
    const char *cl_name, *u_name, *ns;
    if (kc_str(&c, cf, ctx, "cluster", &cl_name) || kc_str(&c, cf, ctx, "user", &u_name) ||
        kc_str(&c, cf, ctx, "namespace", &ns))
        goto fail;
    if (!cl_name || !*cl_name) {
        kc_errf(&c, cf, ctx, "context \"%s\" names no cluster", ctx_name);
        goto fail;
    }
    r = kc_find(&c, "clusters", "cluster", cl_name, &clf, &cl);
    if (r < 0) goto fail;
    if (r > 0) {
        kc_errf(&c, cf, cJSON_GetObjectItemCaseSensitive(ctx, "cluster"),
                "cluster \"%s\" (of context \"%s\") not found in %s", cl_name, ctx_name, files);
        goto fail;
    }
    if (kc_cluster(&c, clf, cl, cl_name, &cfg) != 0) goto fail;
    if (u_name && *u_name) {
        r = kc_find(&c, "users", "user", u_name, &uf, &u);
        if (r < 0) goto fail;
        if (r > 0) {
            kc_errf(&c, cf, cJSON_GetObjectItemCaseSensitive(ctx, "user"),
                    "user \"%s\" (of context \"%s\") not found in %s", u_name, ctx_name, files);
            goto fail;
        }
        if (kc_user(&c, uf, u, u_name, &cfg) != 0) goto fail;
        if (!dup_str(&cfg.source, uf->path)) goto oom;
    } else if (!dup_str(&cfg.source, cf->path)) {
        goto oom;
    }
    if (!dup_str(&cfg.namespace, ns && *ns ? ns : "default") ||
        !dup_str(&cfg.context_name, ctx_name))
        goto oom;
    kc_free(&c);
    *out = cfg;
    return 0;
oom:
    errf(err, errsz, "out of memory");
fail:
    kc_free(&c);
    csl_kube_config_free(&cfg);
    return -1;
}

/* ------------------------------------------------------------------ in-cluster */

int csl_kube_incluster_config(csl_kube_config *out, char *err, size_t errsz)
{
    char dummy[8];
    if (!err || errsz == 0) err = dummy, errsz = sizeof dummy;
    const char *host = getenv("KUBERNETES_SERVICE_HOST");
    const char *port = getenv("KUBERNETES_SERVICE_PORT");
    if (!host || !*host || !port || !*port) {
        errf(err, errsz,
             "not running inside a cluster: KUBERNETES_SERVICE_HOST and "
             "KUBERNETES_SERVICE_PORT must both be set (else use a kubeconfig)");
        return -1;
    }
    const char *dir = getenv("CSL_SERVICEACCOUNT_DIR");
    if (!dir || !*dir) dir = SA_DIR;
    csl_kube_config cfg = {0};
    csl_buf b = CSL_BUF_INIT;
    bool v6 = strchr(host, ':') != NULL;
    csl_buf_printf(&b, "https://%s%s%s:%s", v6 ? "[" : "", host, v6 ? "]" : "", port);
    cfg.server = csl_buf_steal(&b);
    csl_buf_printf(&b, "%s/token", dir);
    cfg.token_file = csl_buf_steal(&b);
    csl_buf_printf(&b, "%s/ca.crt", dir);
    cfg.ca_file = csl_buf_steal(&b);
    csl_buf_printf(&b, "%s/namespace", dir);
    char *ns_path = csl_buf_steal(&b);
    cfg.context_name = strdup("in-cluster");
    cfg.source = strdup(dir);
    if (!cfg.server || !cfg.token_file || !cfg.ca_file || !ns_path || !cfg.context_name ||
        !cfg.source) {
        errf(err, errsz, "out of memory");
        goto fail;
    }
    const char *must[] = {cfg.token_file, cfg.ca_file};
    for (size_t i = 0; i < 2; i++) {
        if (access(must[i], R_OK) != 0) {
            errf(err, errsz,
                 "in-cluster config: cannot read %s: %s (is a service account token "
                 "mounted?)",
                 must[i], strerror(errno));
            goto fail;
        }
    }
    size_t len;
    int e;
    char *ns = read_file(ns_path, 4096, &len, &e);
    if (ns) {
        while (len > 0 && (ns[len - 1] == '\n' || ns[len - 1] == ' ' || ns[len - 1] == '\r'))
            ns[--len] = 0;
        if (!*ns) {
            free(ns);
            ns = NULL;
        }
    }
    cfg.namespace = ns ? ns : strdup("default");
    if (!cfg.namespace) {
        errf(err, errsz, "out of memory");
        goto fail;
    }
    free(ns_path);
    *out = cfg;
    return 0;
fail:
    free(ns_path);
    csl_kube_config_free(&cfg);
    return -1;
}

/* ------------------------------------------------------------------ exec plugins */

/* Finds an executable for cmd: as given when it holds a '/', else on PATH. */
static char *find_command(const char *cmd)
{
    if (strchr(cmd, '/')) return access(cmd, X_OK) == 0 ? strdup(cmd) : NULL;
    const char *path = getenv("PATH");
    if (!path || !*path) path = "/usr/local/bin:/usr/bin:/bin";
    const char *p = path;
    while (*p) {
        size_t n = strcspn(p, ":");
        csl_buf b = CSL_BUF_INIT;
        csl_buf_printf(&b, "%.*s/%s", (int)n, n ? p : ".", cmd);
        char *full = csl_buf_steal(&b);
        struct stat st;
        if (full && stat(full, &st) == 0 && S_ISREG(st.st_mode) && access(full, X_OK) == 0)
            return full;
        free(full);
        p += n;
        if (*p == ':') p++;
    }
    return NULL;
}

static char *exec_info_json(const csl_kube_config *cfg)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "kind", "ExecCredential");
    cJSON_AddStringToObject(j, "apiVersion", cfg->exec.api_version);
    cJSON *spec = cJSON_AddObjectToObject(j, "spec");
    cJSON_AddBoolToObject(spec, "interactive", false);
    if (cfg->exec.provide_cluster_info) {
        cJSON *cl = cJSON_AddObjectToObject(spec, "cluster");
        cJSON_AddStringToObject(cl, "server", cfg->server ? cfg->server : "");
        if (cfg->tls_server_name)
            cJSON_AddStringToObject(cl, "tls-server-name", cfg->tls_server_name);
        if (cfg->insecure) cJSON_AddBoolToObject(cl, "insecure-skip-tls-verify", true);
        char *ca = NULL;
        size_t calen = 0;
        int e;
        if (cfg->ca_data)
            ca = b64_encode(cfg->ca_data, cfg->ca_data_len);
        else if (cfg->ca_file) {
            char *pem = read_file(cfg->ca_file, 1024 * 1024, &calen, &e);
            if (pem) ca = b64_encode(pem, calen);
            free(pem);
        }
        if (ca) cJSON_AddStringToObject(cl, "certificate-authority-data", ca);
        free(ca);
    }
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

/* environ less the names we set, then the user's env, then the info. */
static char **exec_envp(const csl_kube_config *cfg, const char *info)
{
    size_t n = 0, m = 0;
    for (char **e = environ; e && *e; e++) n++;
    for (char **e = cfg->exec.env; e && *e; e++) m++;
    char **v = calloc(n + m + 2, sizeof *v);
    if (!v) return NULL;
    size_t o = 0;
    for (char **e = environ; e && *e; e++) {
        size_t kl = strcspn(*e, "=");
        bool skip = strncmp(*e, "KUBERNETES_EXEC_INFO=", 21) == 0;
        for (char **u = cfg->exec.env; !skip && u && *u; u++) skip = strncmp(*e, *u, kl + 1) == 0;
        if (!skip) v[o++] = *e;
    }
    for (char **u = cfg->exec.env; u && *u; u++) v[o++] = *u;
    csl_buf b = CSL_BUF_INIT;
    csl_buf_printf(&b, "KUBERNETES_EXEC_INFO=%s", info);
    v[o] = csl_buf_steal(&b); /* the one entry we own; freed by the caller */
    if (!v[o]) {
        free(v);
        return NULL;
    }
    return v;
}

static void trim_copy(char *out, size_t outsz, const char *s)
{
    while (*s == ' ' || *s == '\n' || *s == '\r' || *s == '\t') s++;
    snprintf(out, outsz, "%s", s);
    size_t n = strlen(out);
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == ' ' || out[n - 1] == '\r')) out[--n] = 0;
    for (char *p = out; *p; p++)
        if (*p == '\n') *p = ' ';
}

/* Reads what is readable from fd into b (up to max; the rest dropped).
 * Returns false at EOF or error. */
static bool drain(int fd, csl_buf *b, size_t max)
{
    char chunk[4096];
    for (;;) {
        ssize_t r = read(fd, chunk, sizeof chunk);
        if (r > 0) {
            size_t room = b->len < max ? max - b->len : 0;
            csl_buf_append(b, chunk, (size_t)r < room ? (size_t)r : room);
            continue;
        }
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
        return false;
    }
}

/* Runs the plugin and collects stdout/stderr. Returns 0 with *status the
 * wait status, or -1 (err filled). */
static int run_plugin(const char *path, char **argv, char **envp, long timeout_ms, csl_buf *out,
                      csl_buf *errb, int *status, char *err, size_t errsz)
{
    int po[2] = {-1, -1}, pe[2] = {-1, -1}, px[2] = {-1, -1};
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (devnull < 0 || pipe2(po, O_CLOEXEC) || pipe2(pe, O_CLOEXEC) || pipe2(px, O_CLOEXEC)) {
        errf(err, errsz, "exec plugin \"%s\": cannot create pipes: %s", path, strerror(errno));
        goto fail_fds;
    }
    pid_t pid = fork();
    if (pid < 0) {
        errf(err, errsz, "exec plugin \"%s\": fork failed: %s", path, strerror(errno));
        goto fail_fds;
    }
    if (pid == 0) {
        /* child: only async-signal-safe calls from here on */
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        dup2(devnull, 0);
        dup2(po[1], 1);
        dup2(pe[1], 2);
        execve(path, argv, envp);
        int e = errno;
        ssize_t w = write(px[1], &e, sizeof e);
        (void)w;
        _exit(127);
    }
    close(po[1]);
    close(pe[1]);
    close(px[1]);
    close(devnull);
    po[1] = pe[1] = px[1] = devnull = -1;

    int exec_errno = 0;
    ssize_t r;
    while ((r = read(px[0], &exec_errno, sizeof exec_errno)) < 0 && errno == EINTR) {
    }
    close(px[0]);
    px[0] = -1;
    if (r == (ssize_t)sizeof exec_errno) {
        while (waitpid(pid, status, 0) < 0 && errno == EINTR) {
        }
        errf(err, errsz, "exec plugin \"%s\" could not be started: %s", path, strerror(exec_errno));
        goto fail_fds;
    }

    fcntl(po[0], F_SETFL, O_NONBLOCK);
    fcntl(pe[0], F_SETFL, O_NONBLOCK);
    int64_t deadline = csl_mono_ns() + (int64_t)timeout_ms * 1000000;
    bool open_o = true, open_e = true, exited = false;
    while (open_o || open_e) {
        int64_t left = (deadline - csl_mono_ns()) / 1000000;
        if (left <= 0) {
            kill(pid, SIGKILL);
            while (waitpid(pid, status, 0) < 0 && errno == EINTR) {
            }
            errf(err, errsz, "exec plugin \"%s\" did not finish within %ld ms and was killed", path,
                 timeout_ms);
            goto fail_fds;
        }
        struct pollfd fds[2] = {{open_o ? po[0] : -1, POLLIN, 0}, {open_e ? pe[0] : -1, POLLIN, 0}};
        /* short waits so a plugin whose children keep the pipes open is
         * still seen to exit */
        int pr = poll(fds, 2, left < 100 ? (int)left : 100);
        if (pr < 0 && errno != EINTR) break;
        if (open_o && fds[0].revents) open_o = drain(po[0], out, EXEC_STDOUT_MAX + 1);
        if (open_e && fds[1].revents) open_e = drain(pe[0], errb, EXEC_STDERR_MAX);
        if (!exited) {
            pid_t w = waitpid(pid, status, WNOHANG);
            if (w == pid || (w < 0 && errno == ECHILD)) exited = true;
            if (w < 0 && errno == ECHILD) *status = 0;
        }
        if (exited) {
            if (open_o) drain(po[0], out, EXEC_STDOUT_MAX + 1);
            if (open_e) drain(pe[0], errb, EXEC_STDERR_MAX);
            break;
        }
    }
    if (!exited) {
        int64_t left = (deadline - csl_mono_ns()) / 1000000;
        for (;;) {
            pid_t w = waitpid(pid, status, WNOHANG);
            if (w == pid) break;
            if (w < 0 && errno != EINTR) {
                *status = 0;
                break;
            }
            if (left-- <= 0) {
                kill(pid, SIGKILL);
                while (waitpid(pid, status, 0) < 0 && errno == EINTR) {
                }
                errf(err, errsz, "exec plugin \"%s\" did not exit within %ld ms and was killed",
                     path, timeout_ms);
                goto fail_fds;
            }
            csl_sleep_ns(1000000);
        }
    }
    close(po[0]);
    close(pe[0]);
    return 0;
fail_fds:
    for (int *fd = (int[]){po[0], po[1], pe[0], pe[1], px[0], px[1], devnull, -2}; *fd != -2; fd++)
        if (*fd >= 0) close(*fd);
    return -1;
}

static int parse_exec_output(const csl_kube_config *cfg, const char *cmd, const csl_buf *outb,
                             csl_kube_credential *cred, char *err, size_t errsz)
{
    if (outb->len > EXEC_STDOUT_MAX) {
        errf(err, errsz, "exec plugin \"%s\" printed more than %d bytes", cmd, EXEC_STDOUT_MAX);
        return -1;
    }
    cJSON *j = cJSON_ParseWithLength(csl_buf_str(outb), outb->len);
    int rc = -1;
    if (!cJSON_IsObject(j)) {
        char ex[120];
        trim_copy(ex, sizeof ex, csl_buf_str(outb));
        errf(err, errsz, "exec plugin \"%s\" did not print an ExecCredential JSON object: %s", cmd,
             outb->len ? ex : "(nothing on stdout)");
        goto out;
    }
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(j, "kind");
    const cJSON *api = cJSON_GetObjectItemCaseSensitive(j, "apiVersion");
    if (!cJSON_IsString(kind) || strcmp(kind->valuestring, "ExecCredential") != 0) {
        errf(err, errsz, "exec plugin \"%s\" printed kind %s, expected ExecCredential", cmd,
             cJSON_IsString(kind) ? kind->valuestring : "(none)");
        goto out;
    }
    if (!cJSON_IsString(api) || strcmp(api->valuestring, cfg->exec.api_version) != 0) {
        errf(err, errsz,
             "exec plugin \"%s\" answered apiVersion %s, but the kubeconfig asked for %s", cmd,
             cJSON_IsString(api) ? api->valuestring : "(none)", cfg->exec.api_version);
        goto out;
    }
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(j, "status");
    const cJSON *tok = cJSON_GetObjectItemCaseSensitive(st, "token");
    const cJSON *cert = cJSON_GetObjectItemCaseSensitive(st, "clientCertificateData");
    const cJSON *key = cJSON_GetObjectItemCaseSensitive(st, "clientKeyData");
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive(st, "expirationTimestamp");
    bool has_tok = cJSON_IsString(tok) && *tok->valuestring;
    bool has_cert = cJSON_IsString(cert) && *cert->valuestring;
    bool has_key = cJSON_IsString(key) && *key->valuestring;
    if (!cJSON_IsObject(st) || (!has_tok && !has_cert && !has_key)) {
        errf(err, errsz,
             "exec plugin \"%s\" gave neither status.token nor "
             "status.clientCertificateData/clientKeyData",
             cmd);
        goto out;
    }
    if (has_cert != has_key) {
        errf(err, errsz, "exec plugin \"%s\" gave status.%s without status.%s", cmd,
             has_cert ? "clientCertificateData" : "clientKeyData",
             has_cert ? "clientKeyData" : "clientCertificateData");
        goto out;
    }
    memset(cred, 0, sizeof *cred);
    if (exp && !cJSON_IsNull(exp)) {
        if (!cJSON_IsString(exp) || csl_rfc3339_parse(exp->valuestring, &cred->expires_ms) != 0) {
            errf(err, errsz,
                 "exec plugin \"%s\": status.expirationTimestamp is not an RFC 3339 "
                 "time",
                 cmd);
            goto out;
        }
    }
    if ((has_tok && !(cred->token = strdup(tok->valuestring))) ||
        (has_cert && !dup_str(&cred->cert_data, cert->valuestring)) ||
        (has_key && !dup_str(&cred->key_data, key->valuestring))) {
        csl_kube_credential_free(cred);
        errf(err, errsz, "out of memory");
        goto out;
    }
    if (has_cert) cred->cert_data_len = strlen(cred->cert_data);
    if (has_key) cred->key_data_len = strlen(cred->key_data);
    rc = 0;
out:
    cJSON_Delete(j);
    return rc;
}

int csl_kube_exec_credential(const csl_kube_config *cfg, long timeout_ms, csl_kube_credential *out,
                             char *err, size_t errsz)
{
    char dummy[8];
    if (!err || errsz == 0) err = dummy, errsz = sizeof dummy;
    err[0] = 0;
    const csl_kube_exec *ex = &cfg->exec;
    if (!ex->command) {
        errf(err, errsz, "context \"%s\" has no exec credential plugin",
             cfg->context_name ? cfg->context_name : "");
        return -1;
    }
    if (ex->interactive) {
        errf(err, errsz,
             "exec plugin \"%s\" wants interactiveMode Always (a terminal), which this "
             "program cannot give; change interactiveMode to IfAvailable or Never",
             ex->command);
        return -1;
    }
    if (!ex->api_version ||
        (strcmp(ex->api_version, exec_v1) != 0 && strcmp(ex->api_version, exec_v1beta1) != 0)) {
        errf(err, errsz, "exec plugin \"%s\": apiVersion must be %s or %s", ex->command, exec_v1,
             exec_v1beta1);
        return -1;
    }
    if (timeout_ms <= 0) timeout_ms = EXEC_DEFAULT_TIMEOUT_MS;
    char *path = find_command(ex->command);
    if (!path) {
        errf(err, errsz, "exec plugin: command \"%s\" not found%s%s%s", ex->command,
             strchr(ex->command, '/') ? " or not executable" : " in PATH",
             ex->install_hint ? ". " : "", ex->install_hint ? ex->install_hint : "");
        return -1;
    }
    size_t nargs = 0;
    for (char **a = ex->args; a && *a; a++) nargs++;
    char **argv = calloc(nargs + 2, sizeof *argv);
    char *info = exec_info_json(cfg);
    char **envp = info ? exec_envp(cfg, info) : NULL;
    csl_buf outb = CSL_BUF_INIT, errb = CSL_BUF_INIT;
    int rc = -1, status = 0;
    if (!argv || !info || !envp) {
        errf(err, errsz, "out of memory");
        goto done;
    }
    argv[0] = path;
    for (size_t i = 0; i < nargs; i++) argv[i + 1] = ex->args[i];
    if (run_plugin(path, argv, envp, timeout_ms, &outb, &errb, &status, err, errsz) != 0) goto done;
    char se[400];
    trim_copy(se, sizeof se, csl_buf_str(&errb));
    if (WIFSIGNALED(status)) {
        errf(err, errsz, "exec plugin \"%s\" was killed by signal %d%s%s", ex->command,
             WTERMSIG(status), se[0] ? ": " : "", se);
        goto done;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
        errf(err, errsz, "exec plugin \"%s\" exited with status %d: %s", ex->command,
             WEXITSTATUS(status), se[0] ? se : "(no message on stderr)");
        goto done;
    }
    if (parse_exec_output(cfg, ex->command, &outb, out, err, errsz) != 0) goto done;
    if (se[0])
        csl_log(CSL_LOG_INFO, "exec plugin said", "command", ex->command, "stderr", se, NULL);
    rc = 0;
done:
    if (envp) {
        size_t i = 0;
        while (envp[i]) i++;
        free(envp[i - 1]); /* KUBERNETES_EXEC_INFO, the last one */
    }
    free(envp);
    free(argv);
    free(info);
    free(path);
    csl_buf_free(&outb);
    csl_buf_free(&errb);
    return rc;
}
