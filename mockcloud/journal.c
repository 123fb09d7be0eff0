/* journal.c — the request journal (see journal.h).
 *
 * Design idea: the ring is one calloc'd array of fixed-size records and a
 * write is a struct copy under a mutex, so journaling every request costs
 * the same at the millionth request as at the first. Queries hold the lock
 * only to count and copy the records they will show; JSON is built after
 * the lock is released. */
#include "journal.h"

#include <errno.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "csl/clock.h"

struct mc_journal {
    pthread_mutex_t lock;
    mc_journal_entry *ring;
    size_t cap;
    size_t head;  /* index of the oldest entry */
    size_t len;   /* entries held */
    uint64_t seq; /* last sequence number given */
    uint64_t dropped;
};

/* ---------------------------------------------------------------- strings */

/* Backs off from n to the start of the UTF-8 character that holds byte n,
 * so a cut never leaves half a character behind. */
static size_t utf8_cut(const char *s, size_t n)
{
    size_t i = n;
    while (i > 0 && ((unsigned char)s[i] & 0xC0) == 0x80) i--;
    return i;
}

void mc_journal_copy(char *dst, size_t dstsz, const char *src)
{
    if (!dstsz) return;
    if (!src) src = "";
    size_t n = strnlen(src, dstsz);
    if (n == dstsz) n = utf8_cut(src, dstsz - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* Makes an entry's strings safe to print whatever the caller put there. */
#define TERMINATE(field) ((field)[sizeof(field) - 1] = '\0')

/* ---------------------------------------------------------------- ring */

mc_journal *mc_journal_new(size_t cap)
{
    if (cap < 1) cap = 1;
    mc_journal *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    j->ring = calloc(cap, sizeof *j->ring);
    if (!j->ring || pthread_mutex_init(&j->lock, NULL) != 0) {
        free(j->ring);
        free(j);
        return NULL;
    }
    j->cap = cap;
    return j;
}

void mc_journal_free(mc_journal *j)
{
    if (!j) return;
    pthread_mutex_destroy(&j->lock);
    free(j->ring);
    free(j);
}

uint64_t mc_journal_add(mc_journal *j, const mc_journal_entry *e)
{
    pthread_mutex_lock(&j->lock);
    size_t slot;
    if (j->len == j->cap) {
        slot = j->head;
        j->head = (j->head + 1) % j->cap;
        j->dropped++;
    } else {
        slot = (j->head + j->len) % j->cap;
        j->len++;
    }
    mc_journal_entry *d = &j->ring[slot];
    *d = *e;
    d->seq = ++j->seq;
    TERMINATE(d->method);
    TERMINATE(d->path);
    TERMINATE(d->op);
    TERMINATE(d->idem_key);
    TERMINATE(d->fault);
    TERMINATE(d->rules);
    uint64_t seq = d->seq;
    pthread_mutex_unlock(&j->lock);
    return seq;
}

void mc_journal_clear(mc_journal *j)
{
    pthread_mutex_lock(&j->lock);
    j->head = 0;
    j->len = 0;
    j->dropped = 0;
    pthread_mutex_unlock(&j->lock);
}

size_t mc_journal_len(mc_journal *j)
{
    pthread_mutex_lock(&j->lock);
    size_t n = j->len;
    pthread_mutex_unlock(&j->lock);
    return n;
}

/* ---------------------------------------------------------------- filters */

static bool entry_matches(const mc_journal_entry *e, const mc_journal_filter *f)
{
    if (e->seq <= f->since_seq) return false;
    if (f->since_ms && e->time_ms < f->since_ms) return false;
    if (f->status && e->status != f->status) return false;
    if (f->status_class && e->status / 100 != f->status_class) return false;
    if (f->method && strcasecmp(e->method, f->method) != 0) return false;
    if (f->op && strcmp(e->op, f->op) != 0) return false;
    if (f->key && strcmp(e->idem_key, f->key) != 0) return false;
    if (f->fault) {
        if (strcmp(f->fault, "any") == 0) {
            if (!e->fault[0]) return false;
        } else if (strcmp(f->fault, "none") == 0) {
            if (e->fault[0]) return false;
        } else if (strcmp(e->fault, f->fault) != 0) {
            return false;
        }
    }
    if (f->path && !mc_glob_match(f->path, e->path)) return false;
    return true;
}

static const char *const filter_args[] = {"method", "path",  "op",        "key",   "fault",
                                          "status", "since", "sinceTime", "limit", NULL};
#define FILTER_ARG_LIST "method, path, op, key, fault, status, since, sinceTime or limit"

static int ferr(char *err, size_t errsz, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int ferr(char *err, size_t errsz, const char *fmt, ...)
{
    if (err && errsz) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errsz, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Whole decimal number in [lo, hi]; nothing else in the string. */
static bool parse_uint(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
    if (*s < '0' || *s > '9') return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v < lo || v > hi) return false;
    *out = v;
    return true;
}

int mc_journal_filter_parse(mc_journal_filter *f, const mc_kv *q, size_t n, char *err, size_t errsz)
{
    mc_journal_filter r = {0};
    char unknown[256] = "";
    size_t unknown_len = 0, n_unknown = 0;
    for (size_t i = 0; i < n; i++) {
        const char *k = q[i].key ? q[i].key : "";
        const char *v = q[i].value ? q[i].value : "";
        size_t a = 0;
        while (filter_args[a] && strcmp(filter_args[a], k) != 0) a++;
        if (!filter_args[a]) {
            n_unknown++;
            if (unknown_len < sizeof unknown)
                unknown_len += (size_t)snprintf(unknown + unknown_len, sizeof unknown - unknown_len,
                                                "%s\"%.40s\"", unknown_len ? ", " : "", k);
            continue;
        }
        for (size_t b = 0; b < i; b++)
            if (q[b].key && strcmp(q[b].key, k) == 0)
                return ferr(err, errsz, "%s: given twice; give each filter once", k);
        if (!*v) return ferr(err, errsz, "%s: empty value; leave it out to match everything", k);
        uint64_t u;
        switch (a) {
        case 0: {
            bool ok = strlen(v) <= 7;
            for (const char *p = v; ok && *p; p++)
                ok = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z');
            if (!ok)
                return ferr(err, errsz, "method: \"%.20s\" is not an HTTP method such as GET", v);
            r.method = v;
            break;
        }
        case 1:
            r.path = v;
            break;
        case 2:
            r.op = v;
            break;
        case 3:
            r.key = v;
            break;
        case 4:
            if (strlen(v) >= sizeof((mc_journal_entry *)0)->fault)
                return ferr(err, errsz,
                            "fault: \"%.40s\" is not an effect type; use any, none or a type "
                            "such as error or rateLimit",
                            v);
            r.fault = v;
            break;
        case 5:
            if (strlen(v) == 3 && v[0] >= '1' && v[0] <= '5' && (v[1] == 'x' || v[1] == 'X') &&
                (v[2] == 'x' || v[2] == 'X')) {
                r.status_class = v[0] - '0';
            } else if (parse_uint(v, 100, 599, &u)) {
                r.status = (int)u;
            } else {
                return ferr(err, errsz,
                            "status: \"%.20s\" is neither a status (100..599, e.g. 503) nor a "
                            "class (1xx..5xx)",
                            v);
            }
            break;
        case 6:
            if (!parse_uint(v, 0, UINT64_MAX, &u))
                return ferr(err, errsz,
                            "since: \"%.30s\" is not a sequence number (use lastSeq of the "
                            "previous answer)",
                            v);
            r.since_seq = u;
            break;
        case 7:
            if (csl_rfc3339_parse(v, &r.since_ms) < 0)
                return ferr(err, errsz,
                            "sinceTime: \"%.40s\" is not an RFC 3339 time such as "
                            "2026-11-26T14:21:26Z",
                            v);
            break;
        case 8:
            if (!parse_uint(v, 1, MC_JOURNAL_LIMIT_MAX, &u))
                return ferr(err, errsz, "limit: \"%.20s\" must be an integer 1..%d", v,
                            MC_JOURNAL_LIMIT_MAX);
            r.limit = (size_t)u;
            break;
        }
    }
    if (n_unknown)
        return ferr(err, errsz, "unknown argument%s %s: use " FILTER_ARG_LIST,
                    n_unknown > 1 ? "s" : "", unknown);
    *f = r;
    return 0;
}

/* ---------------------------------------------------------------- queries */

static cJSON *str_or_null(const char *s)
{
    return s[0] ? cJSON_CreateString(s) : cJSON_CreateNull();
}

static cJSON *entry_json(const mc_journal_entry *e)
{
    char t[CSL_RFC3339_LEN];
    csl_rfc3339_ms(e->time_ms, t);
    cJSON *o = cJSON_CreateObject();
    bool ok = o && cJSON_AddNumberToObject(o, "seq", (double)e->seq) &&
              cJSON_AddStringToObject(o, "time", t) &&
              cJSON_AddStringToObject(o, "method", e->method) &&
              cJSON_AddStringToObject(o, "path", e->path) &&
              cJSON_AddItemToObject(o, "op", str_or_null(e->op)) &&
              cJSON_AddNumberToObject(o, "status", e->status) &&
              cJSON_AddNumberToObject(o, "latencyMs", (double)e->latency_us / 1000.0) &&
              cJSON_AddItemToObject(o, "idempotencyKey", str_or_null(e->idem_key)) &&
              cJSON_AddItemToObject(o, "fault", str_or_null(e->fault)) &&
              cJSON_AddItemToObject(o, "rules", str_or_null(e->rules));
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

size_t mc_journal_count(mc_journal *j, const mc_journal_filter *f)
{
    size_t matched = 0;
    pthread_mutex_lock(&j->lock);
    for (size_t i = 0; i < j->len; i++)
        matched += entry_matches(&j->ring[(j->head + i) % j->cap], f);
    pthread_mutex_unlock(&j->lock);
    return matched;
}

cJSON *mc_journal_query(mc_journal *j, const mc_journal_filter *f)
{
    size_t limit = f->limit ? f->limit : MC_JOURNAL_LIMIT_DEFAULT;
    if (limit > MC_JOURNAL_LIMIT_MAX) limit = MC_JOURNAL_LIMIT_MAX;
    size_t matched = 0, taken = 0;
    uint64_t dropped, last_seq;
    mc_journal_entry *out = NULL;

    pthread_mutex_lock(&j->lock);
    for (size_t i = 0; i < j->len; i++)
        matched += entry_matches(&j->ring[(j->head + i) % j->cap], f);
    size_t want = matched < limit ? matched : limit;
    if (want) out = malloc(want * sizeof *out);
    if (out) {
        /* The newest `want` matches: skip the older ones. */
        size_t skip = matched - want;
        for (size_t i = 0; i < j->len && taken < want; i++) {
            const mc_journal_entry *e = &j->ring[(j->head + i) % j->cap];
            if (!entry_matches(e, f)) continue;
            if (skip) {
                skip--;
                continue;
            }
            out[taken++] = *e;
        }
    }
    dropped = j->dropped;
    last_seq = j->seq;
    pthread_mutex_unlock(&j->lock);

    if (want && !out) return NULL;
    cJSON *o = cJSON_CreateObject();
    cJSON *items = o ? cJSON_AddArrayToObject(o, "items") : NULL;
    bool ok = items != NULL;
    for (size_t i = 0; ok && i < taken; i++) ok = cJSON_AddItemToArray(items, entry_json(&out[i]));
    free(out);
    ok = ok && cJSON_AddNumberToObject(o, "matched", (double)matched) &&
         cJSON_AddNumberToObject(o, "dropped", (double)dropped) &&
         cJSON_AddNumberToObject(o, "lastSeq", (double)last_seq);
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}
