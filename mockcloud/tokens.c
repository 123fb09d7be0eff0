/* tokens.c — bearer tokens with read-write / read-only access (see tokens.h).
 *
 * Design idea: a plain array scanned linearly under a read-write lock. A mock
 * cloud holds a handful of tokens, so a scan costs less than hashing would,
 * and the baseline is just a second array copied back on reset. */
#include "tokens.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct token_entry {
    char *token;
    mc_access access;
} token_entry;

typedef struct token_set {
    token_entry *items;
    size_t len, cap;
} token_set;

struct mc_tokens {
    pthread_rwlock_t lock;
    token_set cur;
    token_set base;
    bool auth_on;
    bool base_auth_on;
};

/* ---------------------------------------------------------------- sets */

static void set_free(token_set *s)
{
    for (size_t i = 0; i < s->len; i++) free(s->items[i].token);
    free(s->items);
    memset(s, 0, sizeof *s);
}

static token_entry *set_find(token_set *s, const char *token)
{
    for (size_t i = 0; i < s->len; i++)
        if (strcmp(s->items[i].token, token) == 0) return &s->items[i];
    return NULL;
}

/* 1 added, 0 changed, -1 out of memory. */
static int set_put(token_set *s, const char *token, mc_access a)
{
    token_entry *e = set_find(s, token);
    if (e) {
        e->access = a;
        return 0;
    }
    if (s->len == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        token_entry *items = realloc(s->items, cap * sizeof *items);
        if (!items) return -1;
        s->items = items;
        s->cap = cap;
    }
    char *copy = strdup(token);
    if (!copy) return -1;
    s->items[s->len++] = (token_entry){copy, a};
    return 1;
}

/* dst becomes a deep copy of src; on failure dst is left as it was. */
static int set_copy(token_set *dst, const token_set *src)
{
    token_set n = {0};
    for (size_t i = 0; i < src->len; i++) {
        if (set_put(&n, src->items[i].token, src->items[i].access) < 0) {
            set_free(&n);
            return -1;
        }
    }
    set_free(dst);
    *dst = n;
    return 0;
}

/* ---------------------------------------------------------------- API */

mc_tokens *mc_tokens_new(void)
{
    mc_tokens *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    if (pthread_rwlock_init(&t->lock, NULL) != 0) {
        free(t);
        return NULL;
    }
    return t;
}

void mc_tokens_free(mc_tokens *t)
{
    if (!t) return;
    set_free(&t->cur);
    set_free(&t->base);
    pthread_rwlock_destroy(&t->lock);
    free(t);
}

int mc_access_parse(const char *s, mc_access *out)
{
    if (!s) return -1;
    if (strcmp(s, "read-write") == 0 || strcmp(s, "rw") == 0) {
        *out = MC_ACCESS_READ_WRITE;
        return 0;
    }
    if (strcmp(s, "read-only") == 0 || strcmp(s, "ro") == 0) {
        *out = MC_ACCESS_READ_ONLY;
        return 0;
    }
    return -1;
}

const char *mc_access_name(mc_access a)
{
    switch (a) {
    case MC_ACCESS_READ_WRITE:
        return "read-write";
    case MC_ACCESS_READ_ONLY:
        return "read-only";
    default:
        return "none";
    }
}

const char *mc_token_invalid(const char *token)
{
    if (!token || !*token) return "is empty";
    size_t n = strlen(token);
    if (n > MC_TOKEN_MAX) return "is longer than 256 characters";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)token[i];
        if (c == ' ' || c == '\t') return "contains a space";
        if (c < 0x21 || c > 0x7e) return "contains a character that is not printable ASCII";
    }
    return NULL;
}

int mc_tokens_put(mc_tokens *t, const char *token, mc_access a)
{
    if (mc_token_invalid(token) || (a != MC_ACCESS_READ_ONLY && a != MC_ACCESS_READ_WRITE))
        return -1;
    pthread_rwlock_wrlock(&t->lock);
    int rc = set_put(&t->cur, token, a);
    if (rc >= 0) t->auth_on = true;
    pthread_rwlock_unlock(&t->lock);
    return rc;
}

int mc_tokens_put_flag(mc_tokens *t, const char *arg, char *err, size_t errsz)
{
    char tok[MC_TOKEN_MAX + 8];
    mc_access a = MC_ACCESS_READ_WRITE;
    size_t n = strlen(arg);
    if (n >= sizeof tok) {
        snprintf(err, errsz, "token is longer than %d characters", MC_TOKEN_MAX);
        return -1;
    }
    memcpy(tok, arg, n + 1);
    /* Only a final ":ro" / ":rw" is an access suffix, so tokens may hold ':'. */
    if (n >= 3 && (strcmp(tok + n - 3, ":ro") == 0 || strcmp(tok + n - 3, ":rw") == 0)) {
        a = tok[n - 1] == 'o' ? MC_ACCESS_READ_ONLY : MC_ACCESS_READ_WRITE;
        tok[n - 3] = '\0';
    }
    const char *why = mc_token_invalid(tok);
    if (why) {
        snprintf(err, errsz, "token \"%s\" %s", tok, why);
        return -1;
    }
    if (mc_tokens_put(t, tok, a) < 0) {
        snprintf(err, errsz, "out of memory");
        return -1;
    }
    return 0;
}

int mc_tokens_load_file(mc_tokens *t, const char *path, char *err, size_t errsz)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errsz, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    token_set found = {0};
    char *line = NULL;
    size_t linecap = 0;
    unsigned lineno = 0;
    int rc = -1;
    while (getline(&line, &linecap, f) >= 0) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash) *hash = '\0';
        char *words[3] = {NULL, NULL, NULL};
        size_t nw = 0;
        for (char *save = NULL, *w = strtok_r(line, " \t\r\n", &save); w;
             w = strtok_r(NULL, " \t\r\n", &save)) {
            if (nw < 3) words[nw] = w;
            nw++;
        }
        if (nw == 0) continue;
        if (nw > 2) {
            snprintf(err, errsz, "%s:%u: expected \"TOKEN [rw|ro]\", found %zu words", path, lineno,
                     nw);
            goto out;
        }
        const char *why = mc_token_invalid(words[0]);
        if (why) {
            snprintf(err, errsz, "%s:%u: token %s", path, lineno, why);
            goto out;
        }
        mc_access a = MC_ACCESS_READ_WRITE;
        if (nw == 2 && mc_access_parse(words[1], &a) < 0) {
            snprintf(err, errsz, "%s:%u: access \"%.32s\" is not rw, ro, read-write or read-only",
                     path, lineno, words[1]);
            goto out;
        }
        if (set_put(&found, words[0], a) < 0) {
            snprintf(err, errsz, "%s: out of memory", path);
            goto out;
        }
    }
    if (ferror(f)) {
        snprintf(err, errsz, "%s: read error: %s", path, strerror(errno));
        goto out;
    }
    for (size_t i = 0; i < found.len; i++) {
        if (mc_tokens_put(t, found.items[i].token, found.items[i].access) < 0) {
            snprintf(err, errsz, "%s: out of memory", path);
            goto out;
        }
    }
    rc = 0;
out:
    free(line);
    set_free(&found);
    fclose(f);
    return rc;
}

int mc_tokens_remove(mc_tokens *t, const char *token)
{
    int rc = -1;
    pthread_rwlock_wrlock(&t->lock);
    token_entry *e = token ? set_find(&t->cur, token) : NULL;
    if (e) {
        free(e->token);
        size_t i = (size_t)(e - t->cur.items);
        memmove(e, e + 1, (t->cur.len - i - 1) * sizeof *e);
        t->cur.len--;
        rc = 0;
    }
    pthread_rwlock_unlock(&t->lock);
    return rc;
}

mc_access mc_tokens_lookup(mc_tokens *t, const char *token)
{
    if (!token) return MC_ACCESS_NONE;
    pthread_rwlock_rdlock(&t->lock);
    token_entry *e = set_find(&t->cur, token);
    mc_access a = e ? e->access : MC_ACCESS_NONE;
    pthread_rwlock_unlock(&t->lock);
    return a;
}

bool mc_tokens_auth_on(mc_tokens *t)
{
    pthread_rwlock_rdlock(&t->lock);
    bool on = t->auth_on;
    pthread_rwlock_unlock(&t->lock);
    return on;
}

int mc_tokens_set_baseline(mc_tokens *t)
{
    pthread_rwlock_wrlock(&t->lock);
    int rc = set_copy(&t->base, &t->cur);
    t->base_auth_on = t->auth_on;
    pthread_rwlock_unlock(&t->lock);
    return rc;
}

void mc_tokens_restore(mc_tokens *t)
{
    pthread_rwlock_wrlock(&t->lock);
    /* On allocation failure the current set stays: stricter, never looser. */
    if (set_copy(&t->cur, &t->base) == 0) t->auth_on = t->base_auth_on;
    pthread_rwlock_unlock(&t->lock);
}

cJSON *mc_tokens_list(mc_tokens *t)
{
    cJSON *root = cJSON_CreateObject();
    if (!root) return NULL;
    pthread_rwlock_rdlock(&t->lock);
    cJSON_AddBoolToObject(root, "authEnabled", t->auth_on);
    cJSON *items = cJSON_AddArrayToObject(root, "items");
    for (size_t i = 0; items && i < t->cur.len; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "token", t->cur.items[i].token);
        cJSON_AddStringToObject(o, "access", mc_access_name(t->cur.items[i].access));
        cJSON_AddItemToArray(items, o);
    }
    pthread_rwlock_unlock(&t->lock);
    return root;
}

size_t mc_tokens_count(mc_tokens *t)
{
    pthread_rwlock_rdlock(&t->lock);
    size_t n = t->cur.len;
    pthread_rwlock_unlock(&t->lock);
    return n;
}
