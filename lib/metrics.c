/* metrics.c — Prometheus metric families and their text exposition, format
 * 0.0.4 (see csl/metrics.h).
 *
 * The one idea: a family owns its children and its lock. An update hashes
 * the label values, finds (or creates) the child under that family's lock and
 * changes a number; nothing else is shared, so families never contend with
 * each other. Rendering walks the families under the registry lock, taking
 * each family's lock in turn (registry before family, never the other way),
 * after the collect hooks ran with no lock held. */
#include "csl/metrics.h"

#include "csl/log.h"

#include <dirent.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const double csl_metrics_default_buckets[] = {.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10};
const size_t csl_metrics_default_buckets_len =
    sizeof csl_metrics_default_buckets / sizeof csl_metrics_default_buckets[0];

enum kind { KIND_COUNTER, KIND_GAUGE, KIND_HISTOGRAM };
static const char *const kind_names[] = {"counter", "gauge", "histogram"};

typedef struct child {
    struct child *hnext; /* hash chain */
    struct child *onext; /* creation order, for rendering */
    uint64_t hash;
    double value; /* counter, gauge; a histogram's sum */
    uint64_t count;
    uint64_t *buckets;    /* per bucket (not cumulative), nbuckets + 1 for +Inf */
    const char *values[]; /* nlabels strings, stored after the array */
} child;

struct csl_metric {
    csl_metrics *reg;
    struct csl_metric *next; /* registration order */
    enum kind kind;
    char *name;
    char *help;
    char **labels;
    size_t nlabels;
    double *bounds; /* histogram upper bounds, +Inf implied */
    size_t nbounds;

    pthread_mutex_t lock; /* guards everything below */
    child **table;
    size_t table_size; /* power of two */
    size_t nchildren;
    child *first, *last;
    bool warned_labels, warned_misuse;
};

typedef struct hook {
    csl_metrics_collect_fn fn;
    void *ctx;
} hook;

typedef struct process_families {
    csl_metric *cpu, *rss, *vsize, *fds, *max_fds, *start;
} process_families;

struct csl_metrics {
    pthread_mutex_t lock; /* families list and hooks */
    csl_metric *first, *last;
    hook *hooks;
    size_t nhooks;
    pthread_mutex_t render_lock; /* one scrape at a time runs the hooks */
    process_families proc;
    bool proc_registered;
};

/* ------------------------------------------------------------ formatting */

/* Shortest text that Prometheus (Go's ParseFloat) reads back as v:
 * integers without exponent, +Inf, -Inf, NaN. */
static void fmt_double(char out[32], double v)
{
    if (isnan(v))
        strcpy(out, "NaN");
    else if (isinf(v))
        strcpy(out, v > 0 ? "+Inf" : "-Inf");
    else if (v == 0)
        strcpy(out, "0"); /* also for -0 */
    else if (v == trunc(v) && fabs(v) < 1e18)
        snprintf(out, 32, "%.0f", v);
    else {
        snprintf(out, 32, "%.15g", v);
        if (strtod(out, NULL) != v) snprintf(out, 32, "%.17g", v);
    }
}

static void put_double(csl_buf *out, double v)
{
    char tmp[32];
    fmt_double(tmp, v);
    csl_buf_puts(out, tmp);
}

static void put_label_value(csl_buf *out, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '\\':
            csl_buf_puts(out, "\\\\");
            break;
        case '"':
            csl_buf_puts(out, "\\\"");
            break;
        case '\n':
            csl_buf_puts(out, "\\n");
            break;
        default:
            csl_buf_putc(out, *s);
        }
    }
}

static void put_help(csl_buf *out, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '\\':
            csl_buf_puts(out, "\\\\");
            break;
        case '\n':
            csl_buf_puts(out, "\\n");
            break;
        default:
            csl_buf_putc(out, *s);
        }
    }
}

/* {a="x",b="y"} plus an optional le="..." pair; nothing when both empty. */
static void put_labels(csl_buf *out, const csl_metric *m, const child *c, const char *le)
{
    if (m->nlabels == 0 && !le) return;
    csl_buf_putc(out, '{');
    for (size_t i = 0; i < m->nlabels; i++) {
        if (i) csl_buf_putc(out, ',');
        csl_buf_puts(out, m->labels[i]);
        csl_buf_puts(out, "=\"");
        put_label_value(out, c->values[i]);
        csl_buf_putc(out, '"');
    }
    if (le) {
        if (m->nlabels) csl_buf_putc(out, ',');
        csl_buf_puts(out, "le=\"");
        csl_buf_puts(out, le);
        csl_buf_putc(out, '"');
    }
    csl_buf_putc(out, '}');
}

static void render_family(csl_buf *out, csl_metric *m)
{
    csl_buf_printf(out, "# HELP %s ", m->name);
    put_help(out, m->help);
    csl_buf_printf(out, "\n# TYPE %s %s\n", m->name, kind_names[m->kind]);
    for (const child *c = m->first; c; c = c->onext) {
        if (m->kind != KIND_HISTOGRAM) {
            csl_buf_puts(out, m->name);
            put_labels(out, m, c, NULL);
            csl_buf_putc(out, ' ');
            put_double(out, c->value);
            csl_buf_putc(out, '\n');
            continue;
        }
        uint64_t cum = 0;
        for (size_t i = 0; i <= m->nbounds; i++) {
            char le[32] = "+Inf";
            if (i < m->nbounds) fmt_double(le, m->bounds[i]);
            cum += c->buckets[i];
            csl_buf_printf(out, "%s_bucket", m->name);
            put_labels(out, m, c, le);
            csl_buf_printf(out, " %" PRIu64 "\n", cum);
        }
        csl_buf_printf(out, "%s_sum", m->name);
        put_labels(out, m, c, NULL);
        csl_buf_putc(out, ' ');
        put_double(out, c->value);
        csl_buf_printf(out, "\n%s_count", m->name);
        put_labels(out, m, c, NULL);
        csl_buf_printf(out, " %" PRIu64 "\n", c->count);
    }
}

/* -------------------------------------------------------------- children */

static uint64_t hash_values(const char *const *values, size_t n)
{
    uint64_t h = 14695981039346656037ULL; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        for (const unsigned char *p = (const unsigned char *)values[i]; *p; p++) {
            h ^= *p;
            h *= 1099511628211ULL;
        }
        h ^= 0xff; /* separator: ("ab","c") != ("a","bc") */
        h *= 1099511628211ULL;
    }
    return h;
}

static bool same_values(const csl_metric *m, const child *c, const char *const *values)
{
    for (size_t i = 0; i < m->nlabels; i++)
        if (strcmp(c->values[i], values[i]) != 0) return false;
    return true;
}

static bool grow_table(csl_metric *m)
{
    size_t size = m->table_size ? m->table_size * 2 : 8;
    child **t = calloc(size, sizeof *t);
    if (!t) return false;
    for (size_t i = 0; i < m->table_size; i++) {
        child *c = m->table[i];
        while (c) {
            child *next = c->hnext;
            size_t b = c->hash & (size - 1);
            c->hnext = t[b];
            t[b] = c;
            c = next;
        }
    }
    free(m->table);
    m->table = t;
    m->table_size = size;
    return true;
}

/* The child for values, created when create is set. Called with m->lock. */
static child *find_child(csl_metric *m, const char *const *values, bool create)
{
    uint64_t h = hash_values(values, m->nlabels);
    if (m->table_size) {
        for (child *c = m->table[h & (m->table_size - 1)]; c; c = c->hnext)
            if (c->hash == h && same_values(m, c, values)) return c;
    }
    if (!create) return NULL;
    if (m->nchildren >= m->table_size && !grow_table(m)) return NULL;

    size_t nb = m->kind == KIND_HISTOGRAM ? m->nbounds + 1 : 0;
    size_t size = sizeof(child) + m->nlabels * sizeof(char *);
    size_t buckets_at = (size + 7) & ~(size_t)7;
    size_t strings_at = buckets_at + nb * sizeof(uint64_t);
    size_t total = strings_at;
    for (size_t i = 0; i < m->nlabels; i++) total += strlen(values[i]) + 1;
    child *c = calloc(1, total);
    if (!c) return NULL;
    c->hash = h;
    c->buckets = nb ? (uint64_t *)((char *)c + buckets_at) : NULL;
    char *p = (char *)c + strings_at;
    for (size_t i = 0; i < m->nlabels; i++) {
        size_t len = strlen(values[i]) + 1;
        memcpy(p, values[i], len);
        c->values[i] = p;
        p += len;
    }
    size_t b = h & (m->table_size - 1);
    c->hnext = m->table[b];
    m->table[b] = c;
    if (m->last)
        m->last->onext = c;
    else
        m->first = c;
    m->last = c;
    m->nchildren++;
    return c;
}

static void drop_children(csl_metric *m)
{
    child *c = m->first;
    while (c) {
        child *next = c->onext;
        free(c);
        c = next;
    }
    m->first = m->last = NULL;
    m->nchildren = 0;
    if (m->table) memset(m->table, 0, m->table_size * sizeof *m->table);
}

/* Locks m and returns the child for values, or NULL (unlocked) when the
 * values do not fit the family or memory ran out. */
static child *lock_child(csl_metric *m, const char *const *values, bool create)
{
    static const char *const none[] = {NULL};
    if (!values) values = none;
    size_t n = 0;
    while (n <= m->nlabels && values[n]) n++;
    pthread_mutex_lock(&m->lock);
    if (n != m->nlabels) {
        if (!m->warned_labels)
            csl_logf(CSL_LOG_WARN,
                     "metrics: %s takes %zu label value(s), got %s %zu; update ignored "
                     "(reported once)",
                     m->name, m->nlabels, n > m->nlabels ? "more than" : "only",
                     n > m->nlabels ? m->nlabels : n);
        m->warned_labels = true;
        pthread_mutex_unlock(&m->lock);
        return NULL;
    }
    child *c = find_child(m, values, create);
    if (!c) pthread_mutex_unlock(&m->lock);
    return c;
}

/* Warns once per family about an update its kind does not take. */
static void misuse(csl_metric *m, const char *what)
{
    pthread_mutex_lock(&m->lock);
    if (!m->warned_misuse)
        csl_logf(CSL_LOG_WARN, "metrics: %s on %s %s ignored (reported once)", what,
                 kind_names[m->kind], m->name);
    m->warned_misuse = true;
    pthread_mutex_unlock(&m->lock);
}

/* ---------------------------------------------------------------- updates */

void csl_metric_add(csl_metric *m, double v, const char *const *values)
{
    if (!m) return;
    if (m->kind == KIND_HISTOGRAM || (m->kind == KIND_COUNTER && !(v >= 0))) {
        misuse(m, m->kind == KIND_HISTOGRAM ? "add" : "a negative or NaN add");
        return;
    }
    child *c = lock_child(m, values, true);
    if (!c) return;
    c->value += v;
    pthread_mutex_unlock(&m->lock);
}

void csl_metric_inc(csl_metric *m, const char *const *values)
{
    csl_metric_add(m, 1, values);
}

void csl_metric_set(csl_metric *m, double v, const char *const *values)
{
    if (!m) return;
    if (m->kind == KIND_HISTOGRAM) {
        misuse(m, "set");
        return;
    }
    child *c = lock_child(m, values, true);
    if (!c) return;
    c->value = v;
    pthread_mutex_unlock(&m->lock);
}

void csl_metric_observe(csl_metric *m, double v, const char *const *values)
{
    if (!m) return;
    if (m->kind != KIND_HISTOGRAM) {
        misuse(m, "observe");
        return;
    }
    child *c = lock_child(m, values, true);
    if (!c) return;
    size_t i = 0;
    while (i < m->nbounds && !(v <= m->bounds[i])) i++; /* NaN lands in +Inf */
    c->buckets[i]++;
    c->count++;
    c->value += v;
    pthread_mutex_unlock(&m->lock);
}

void csl_metric_clear(csl_metric *m)
{
    if (!m) return;
    pthread_mutex_lock(&m->lock);
    drop_children(m);
    /* A family without labels always shows its one series. */
    if (m->nlabels == 0) find_child(m, (const char *const[]){NULL}, true);
    pthread_mutex_unlock(&m->lock);
}

double csl_metric_value(csl_metric *m, const char *const *values)
{
    if (!m) return 0;
    child *c = lock_child(m, values, false);
    if (!c) return 0;
    double v = m->kind == KIND_HISTOGRAM ? (double)c->count : c->value;
    pthread_mutex_unlock(&m->lock);
    return v;
}

/* ----------------------------------------------------------- registration */

static bool valid_metric_name(const char *s)
{
    if (!s || !*s || (s[0] >= '0' && s[0] <= '9')) return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == ':'))
            return false;
    return true;
}

static bool valid_label_name(const char *s)
{
    if (!s || !*s || (s[0] >= '0' && s[0] <= '9')) return false;
    if (s[0] == '_' && s[1] == '_') return false; /* reserved for Prometheus */
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_'))
            return false;
    return true;
}

static void family_free(csl_metric *m)
{
    if (!m) return;
    drop_children(m);
    free(m->table);
    for (size_t i = 0; i < m->nlabels; i++) free(m->labels[i]);
    free(m->labels);
    free(m->bounds);
    free(m->name);
    free(m->help);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

static bool same_shape(const csl_metric *m, enum kind kind, const char *const *labels,
                       size_t nlabels, const double *bounds, size_t nbounds)
{
    if (m->kind != kind || m->nlabels != nlabels) return false;
    for (size_t i = 0; i < nlabels; i++)
        if (strcmp(m->labels[i], labels[i]) != 0) return false;
    if (kind != KIND_HISTOGRAM) return true;
    if (m->nbounds != nbounds) return false;
    for (size_t i = 0; i < nbounds; i++)
        if (m->bounds[i] != bounds[i]) return false;
    return true;
}

static csl_metric *family_new(csl_metrics *reg, enum kind kind, const char *name, const char *help,
                              const char *const *labels, const double *bounds, size_t nbounds)
{
    const char *why = NULL;
    size_t nlabels = 0;
    if (!valid_metric_name(name)) {
        why = "a metric name is [a-zA-Z_:][a-zA-Z0-9_:]*";
        goto bad;
    }
    for (; labels && labels[nlabels]; nlabels++) {
        if (!valid_label_name(labels[nlabels])) {
            why = "a label name is [a-zA-Z_][a-zA-Z0-9_]* and does not start with __";
            goto bad;
        }
        if (kind == KIND_HISTOGRAM && strcmp(labels[nlabels], "le") == 0) {
            why = "\"le\" is reserved for histogram buckets";
            goto bad;
        }
        for (size_t k = 0; k < nlabels; k++)
            if (strcmp(labels[k], labels[nlabels]) == 0) {
                why = "a label name appears twice";
                goto bad;
            }
    }
    if (kind == KIND_HISTOGRAM) {
        if (nbounds && isinf(bounds[nbounds - 1]) && bounds[nbounds - 1] > 0) nbounds--;
        for (size_t i = 0; i < nbounds; i++)
            if (!isfinite(bounds[i]) || (i && !(bounds[i] > bounds[i - 1]))) {
                why = "bucket bounds must be finite and strictly increasing";
                goto bad;
            }
    }

    pthread_mutex_lock(&reg->lock);
    for (csl_metric *m = reg->first; m; m = m->next) {
        if (strcmp(m->name, name) != 0) continue;
        bool same = same_shape(m, kind, labels, nlabels, bounds, nbounds);
        pthread_mutex_unlock(&reg->lock);
        if (same) return m;
        why = "already registered with another type, labels or buckets";
        goto bad;
    }

    csl_metric *m = calloc(1, sizeof *m);
    if (!m) goto oom;
    m->reg = reg;
    m->kind = kind;
    pthread_mutex_init(&m->lock, NULL);
    m->name = strdup(name);
    m->help = strdup(help ? help : "");
    m->labels = calloc(nlabels ? nlabels : 1, sizeof *m->labels);
    if (!m->name || !m->help || !m->labels) goto oom_family;
    for (size_t i = 0; i < nlabels; i++) {
        if (!(m->labels[i] = strdup(labels[i]))) goto oom_family;
        m->nlabels = i + 1;
    }
    if (kind == KIND_HISTOGRAM) {
        m->bounds = malloc((nbounds ? nbounds : 1) * sizeof *m->bounds);
        if (!m->bounds) goto oom_family;
        if (nbounds) memcpy(m->bounds, bounds, nbounds * sizeof *bounds);
        m->nbounds = nbounds;
    }
    if (nlabels == 0 && !find_child(m, (const char *const[]){NULL}, true)) goto oom_family;
    if (reg->last)
        reg->last->next = m;
    else
        reg->first = m;
    reg->last = m;
    pthread_mutex_unlock(&reg->lock);
    return m;

oom_family:
    family_free(m);
oom:
    pthread_mutex_unlock(&reg->lock);
    why = "out of memory";
bad:
    csl_logf(CSL_LOG_ERROR, "metrics: cannot register %s %s: %s", kind_names[kind],
             name ? name : "(null)", why);
    return NULL;
}

csl_metric *csl_metrics_counter(csl_metrics *reg, const char *name, const char *help,
                                const char *const *labels)
{
    return family_new(reg, KIND_COUNTER, name, help, labels, NULL, 0);
}

csl_metric *csl_metrics_gauge(csl_metrics *reg, const char *name, const char *help,
                              const char *const *labels)
{
    return family_new(reg, KIND_GAUGE, name, help, labels, NULL, 0);
}

csl_metric *csl_metrics_histogram(csl_metrics *reg, const char *name, const char *help,
                                  const char *const *labels, const double *buckets, size_t nbuckets)
{
    if (!buckets) {
        buckets = csl_metrics_default_buckets;
        nbuckets = csl_metrics_default_buckets_len;
    }
    return family_new(reg, KIND_HISTOGRAM, name, help, labels, buckets, nbuckets);
}

/* --------------------------------------------------------------- registry */

csl_metrics *csl_metrics_new(void)
{
    csl_metrics *reg = calloc(1, sizeof *reg);
    if (!reg) return NULL;
    pthread_mutex_init(&reg->lock, NULL);
    pthread_mutex_init(&reg->render_lock, NULL);
    return reg;
}

void csl_metrics_free(csl_metrics *reg)
{
    if (!reg) return;
    csl_metric *m = reg->first;
    while (m) {
        csl_metric *next = m->next;
        family_free(m);
        m = next;
    }
    free(reg->hooks);
    pthread_mutex_destroy(&reg->lock);
    pthread_mutex_destroy(&reg->render_lock);
    free(reg);
}

void csl_metrics_on_collect(csl_metrics *reg, csl_metrics_collect_fn fn, void *ctx)
{
    pthread_mutex_lock(&reg->lock);
    hook *h = realloc(reg->hooks, (reg->nhooks + 1) * sizeof *h);
    if (h) {
        reg->hooks = h;
        reg->hooks[reg->nhooks++] = (hook){fn, ctx};
    } else {
        csl_logf(CSL_LOG_ERROR, "metrics: out of memory adding a collect hook");
    }
    pthread_mutex_unlock(&reg->lock);
}

bool csl_metrics_render(csl_metrics *reg, csl_buf *out)
{
    pthread_mutex_lock(&reg->render_lock);
    /* Hooks update families, so they run with no registry lock held; the
     * snapshot lets a hook register more hooks or families. */
    pthread_mutex_lock(&reg->lock);
    size_t n = reg->nhooks;
    hook *hooks = n ? malloc(n * sizeof *hooks) : NULL;
    if (hooks) memcpy(hooks, reg->hooks, n * sizeof *hooks);
    pthread_mutex_unlock(&reg->lock);
    for (size_t i = 0; hooks && i < n; i++) hooks[i].fn(reg, hooks[i].ctx);
    bool ok = n == 0 || hooks;
    free(hooks);

    pthread_mutex_lock(&reg->lock);
    for (csl_metric *m = reg->first; m; m = m->next) {
        pthread_mutex_lock(&m->lock);
        render_family(out, m);
        pthread_mutex_unlock(&m->lock);
    }
    pthread_mutex_unlock(&reg->lock);
    pthread_mutex_unlock(&reg->render_lock);
    return ok && !out->oom;
}

/* ---------------------------------------------------------------- process */

/* Reads a small /proc file into buf; false when it cannot. */
static bool read_proc(const char *path, char *buf, size_t size)
{
    FILE *f = fopen(path, "r");
    if (!f) return false;
    size_t n = fread(buf, 1, size - 1, f);
    fclose(f);
    buf[n] = '\0';
    return n > 0;
}

static double boot_time_s(void)
{
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return 0;
    char line[256];
    double bt = 0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "btime ", 6) == 0) {
            bt = strtod(line + 6, NULL);
            break;
        }
    fclose(f);
    return bt;
}

static size_t count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d) return 0;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n ? n - 1 : 0; /* the directory's own descriptor */
}

static void collect_process(csl_metrics *reg, void *ctx)
{
    const process_families *p = &reg->proc;
    double tck = (double)sysconf(_SC_CLK_TCK);
    double page = (double)sysconf(_SC_PAGESIZE);
    char buf[1024];
    if (read_proc("/proc/self/stat", buf, sizeof buf)) {
        /* comm may hold spaces and parentheses: fields start after the last
         * ')'; v[k] is field k of proc(5) (14 utime, 15 stime, 22 starttime,
         * 23 vsize). */
        char *s = strrchr(buf, ')');
        unsigned long long v[24] = {0};
        int field = 3;
        if (s) {
            char *save = NULL;
            for (char *tok = strtok_r(s + 1, " ", &save); tok && field <= 23;
                 tok = strtok_r(NULL, " ", &save), field++)
                v[field] = strtoull(tok, NULL, 10);
        }
        if (field > 23) {
            csl_metric_set(p->cpu, (double)(v[14] + v[15]) / tck, NULL);
            csl_metric_set(p->start, boot_time_s() + (double)v[22] / tck, NULL);
            csl_metric_set(p->vsize, (double)v[23], NULL);
        }
    }
    if (read_proc("/proc/self/statm", buf, sizeof buf)) {
        unsigned long long size = 0, resident = 0;
        if (sscanf(buf, "%llu %llu", &size, &resident) == 2)
            csl_metric_set(p->rss, (double)resident * page, NULL);
    }
    csl_metric_set(p->fds, (double)count_fds(), NULL);
    long max = sysconf(_SC_OPEN_MAX);
    if (max > 0) csl_metric_set(p->max_fds, (double)max, NULL);
}

void csl_metrics_register_process(csl_metrics *reg)
{
    pthread_mutex_lock(&reg->lock);
    bool done = reg->proc_registered;
    reg->proc_registered = true;
    pthread_mutex_unlock(&reg->lock);
    if (done) return;
    process_families *p = &reg->proc;
    p->cpu = csl_metrics_counter(reg, "process_cpu_seconds_total",
                                 "Total user and system CPU time spent in seconds.", NULL);
    p->rss = csl_metrics_gauge(reg, "process_resident_memory_bytes",
                               "Resident memory size in bytes.", NULL);
    p->vsize = csl_metrics_gauge(reg, "process_virtual_memory_bytes",
                                 "Virtual memory size in bytes.", NULL);
    p->fds = csl_metrics_gauge(reg, "process_open_fds", "Number of open file descriptors.", NULL);
    p->max_fds =
        csl_metrics_gauge(reg, "process_max_fds", "Maximum number of open file descriptors.", NULL);
    p->start = csl_metrics_gauge(reg, "process_start_time_seconds",
                                 "Start time of the process since unix epoch in seconds.", NULL);
    csl_metrics_on_collect(reg, collect_process, NULL);
}
