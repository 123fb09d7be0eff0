/* cloud.c — mockcloud's world: instances, snapshots, operations and
 * idempotency records behind one lock (see cloud.h).
 *
 * Design idea: the world is a function of (seed, calls, their times) and of
 * nothing else. No clock is read and no thread is started: every call first
 * applies the transitions whose deadlines have passed, each stamped with its
 * own deadline, so what a client sees never depends on when anyone looked.
 * Every random draw comes from a stream derived from what it is for
 * ("resize", instance 7, its 3rd transition), never from a shared sequence,
 * so concurrent clients cannot perturb each other's timelines. */
#include "cloud.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "csl/buf.h"
#include "csl/clock.h"
#include "csl/rng.h"

#define ID_LEN 24
#define NO_TRANSITION (-1)
#define TEXT_MAX 256 /* names, tag keys and values */
#define TAGS_MAX 64
#define MEMORY_MAX_MIB 16777216 /* 16 TiB: far above any real machine */
#define LIST_LIMIT_DEFAULT 100
#define LIST_LIMIT_MAX 500
#define IDEM_KEY_MAX 255
#define CATALOGUE_MAX 256
#define STATE_FILE_MAX (1LL << 30)
#define STATE_FORMAT 1

static const char *const net_names[] = {"standard", "cn2-gia", "bgp"};
#define NET_COUNT (sizeof net_names / sizeof net_names[0])

static const char *const state_names[MC_STATE_COUNT] = {
    "pending",  "running",   "resizing", "stopping", "stopped",
    "starting", "rebooting", "deleting", "crashed",
};

static const char *const transition_names[MC_TRANSITION_COUNT] = {
    "create", "resize", "stop", "start", "reboot", "delete", "snapshot",
};

/* The state an instance shows while each transition runs. */
static const mc_state transition_state[MC_TRANSITION_COUNT] = {
    MC_PENDING, MC_RESIZING, MC_STOPPING, MC_STARTING, MC_REBOOTING, MC_DELETING, MC_RUNNING,
};

/* ---------------------------------------------------------------- entities */

/* First member of every stored entity: creation order and id. */
typedef struct ent {
    uint64_t seq;
    char id[ID_LEN];
} ent;

typedef enum { OP_RUNNING = 0, OP_DONE, OP_FAILED } op_state;
static const char *const op_state_names[] = {"running", "done", "failed"};

typedef struct op {
    ent e;
    mc_transition type;
    char target[ID_LEN];
    op_state state;
    int64_t created_ms, done_ms;
    char code[32];
    char message[200];
    bool claimed; /* load only: some pending transition refers to it */
} op;

typedef struct inst {
    ent e;
    char *name, *image, *zone;
    mc_state state;
    int cpu, disk_gib, ip_count, net;
    int64_t memory_mib;
    uint32_t *ips; /* ip_count addresses once first running, else NULL */
    cJSON *tags;
    int64_t created_ms, updated_ms;
    /* createdAt / updatedAt as formatted for the text view, valid while
     * non-empty and *_txt_ms still equals the time: GETs reuse them. */
    char created_txt[CSL_RFC3339_LEN], updated_txt[CSL_RFC3339_LEN];
    int64_t created_txt_ms, updated_txt_ms;
    char *idem_key;  /* the key that created it, to leave a last view */
    uint32_t ntrans; /* transitions drawn so far: the stream index */
    int pt;          /* pending transition or NO_TRANSITION */
    int64_t due_ms;
    op *op; /* the running operation of pt */
    int r_cpu, r_disk;
    int64_t r_memory;
} inst;

typedef enum { SNAP_CREATING = 0, SNAP_AVAILABLE } snap_state;
static const char *const snap_state_names[] = {"creating", "available"};

typedef struct snap {
    ent e;
    char instance_id[ID_LEN];
    char *name;
    snap_state state;
    int size_gib;
    cJSON *tags;
    int64_t created_ms;
    char *idem_key;
    int64_t due_ms; /* INT64_MAX once available */
    op *op;
} snap;

typedef enum { IDEM_INSTANCE = 0, IDEM_SNAPSHOT } idem_kind;
static const char *const idem_kind_names[] = {"instance", "snapshot"};

typedef struct idem {
    ent e; /* id unused; seq orders expiry */
    char *key;
    char *request; /* "POST /v1/instances" …: a key belongs to one route */
    cJSON *body;
    idem_kind kind;
    char target[ID_LEN], op_id[ID_LEN];
    int64_t created_ms;
    cJSON *last_view; /* set when the target is gone */
} idem;

static void op_free(op *o)
{
    free(o);
}

static void inst_free(inst *i)
{
    if (!i) return;
    free(i->name);
    free(i->image);
    free(i->zone);
    free(i->ips);
    cJSON_Delete(i->tags);
    free(i->idem_key);
    free(i);
}

static void snap_free(snap *s)
{
    if (!s) return;
    free(s->name);
    cJSON_Delete(s->tags);
    free(s->idem_key);
    free(s);
}

static void idem_free(idem *r)
{
    if (!r) return;
    free(r->key);
    free(r->request);
    cJSON_Delete(r->body);
    cJSON_Delete(r->last_view);
    free(r);
}

/* ---------------------------------------------------------------- containers */

/* Open-addressing string map; keys point into the values they index, so an
 * entity leaves its map before it is freed. Deletion shifts back the probe
 * chain instead of leaving tombstones. */
typedef struct smap {
    const char **keys;
    void **vals;
    size_t cap, len;
} smap;

static void *smap_get(const smap *m, const char *key)
{
    if (!m->cap) return NULL;
    size_t mask = m->cap - 1;
    for (size_t i = csl_hash64(key) & mask; m->keys[i]; i = (i + 1) & mask)
        if (strcmp(m->keys[i], key) == 0) return m->vals[i];
    return NULL;
}

static void smap_insert(smap *m, const char *key, void *val)
{
    size_t mask = m->cap - 1, i = csl_hash64(key) & mask;
    while (m->keys[i]) i = (i + 1) & mask;
    m->keys[i] = key;
    m->vals[i] = val;
    m->len++;
}

/* Adds key, which must be absent. False on allocation failure. */
static bool smap_put(smap *m, const char *key, void *val)
{
    if ((m->len + 1) * 10 > m->cap * 7) {
        size_t ncap = m->cap ? m->cap * 2 : 16;
        smap n = {calloc(ncap, sizeof *n.keys), calloc(ncap, sizeof *n.vals), ncap, 0};
        if (!n.keys || !n.vals) {
            free(n.keys);
            free(n.vals);
            return false;
        }
        for (size_t i = 0; i < m->cap; i++)
            if (m->keys[i]) smap_insert(&n, m->keys[i], m->vals[i]);
        free(m->keys);
        free(m->vals);
        *m = n;
    }
    smap_insert(m, key, val);
    return true;
}

static void smap_del(smap *m, const char *key)
{
    if (!m->cap) return;
    size_t mask = m->cap - 1, i = csl_hash64(key) & mask;
    while (m->keys[i] && strcmp(m->keys[i], key) != 0) i = (i + 1) & mask;
    if (!m->keys[i]) return;
    for (size_t j = i;;) {
        j = (j + 1) & mask;
        if (!m->keys[j]) break;
        size_t home = csl_hash64(m->keys[j]) & mask;
        /* An entry stays when its home lies cyclically in (i, j]. */
        if (i <= j ? (i < home && home <= j) : (i < home || home <= j)) continue;
        m->keys[i] = m->keys[j];
        m->vals[i] = m->vals[j];
        i = j;
    }
    m->keys[i] = NULL;
    m->vals[i] = NULL;
    m->len--;
}

static void smap_free(smap *m)
{
    free(m->keys);
    free(m->vals);
    *m = (smap){0};
}

/* Entities in creation order (ascending seq). */
typedef struct pvec {
    void **v;
    size_t n, cap;
} pvec;

static bool pvec_push(pvec *p, void *x)
{
    if (p->n == p->cap) {
        size_t ncap = p->cap ? p->cap * 2 : 16;
        void **nv = realloc(p->v, ncap * sizeof *nv);
        if (!nv) return false;
        p->v = nv;
        p->cap = ncap;
    }
    p->v[p->n++] = x;
    return true;
}

static void pvec_remove(pvec *p, size_t i)
{
    memmove(p->v + i, p->v + i + 1, (p->n - i - 1) * sizeof *p->v);
    p->n--;
}

/* Index of the first entity whose seq is at least seq. */
static size_t pvec_lower(const pvec *p, uint64_t seq)
{
    size_t lo = 0, hi = p->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (((const ent *)p->v[mid])->seq < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void pvec_remove_ent(pvec *p, const ent *e)
{
    size_t i = pvec_lower(p, e->seq);
    if (i < p->n && p->v[i] == e) pvec_remove(p, i);
}

/* ---------------------------------------------------------------- the world */

typedef struct world {
    pvec inst, snap, ops, idem;
    smap inst_ix, snap_ix, op_ix, idem_ix;
    /* Creation counters: ids keep advancing across deletion, reset and
     * restart, so an id never names two things. */
    uint64_t n_inst, n_snap, n_op, n_idem, n_crash;
} world;

static void world_free(world *w)
{
    for (size_t i = 0; i < w->inst.n; i++) inst_free(w->inst.v[i]);
    for (size_t i = 0; i < w->snap.n; i++) snap_free(w->snap.v[i]);
    for (size_t i = 0; i < w->ops.n; i++) op_free(w->ops.v[i]);
    for (size_t i = 0; i < w->idem.n; i++) idem_free(w->idem.v[i]);
    free(w->inst.v);
    free(w->snap.v);
    free(w->ops.v);
    free(w->idem.v);
    smap_free(&w->inst_ix);
    smap_free(&w->snap_ix);
    smap_free(&w->op_ix);
    smap_free(&w->idem_ix);
    uint64_t ni = w->n_inst, ns = w->n_snap, no = w->n_op, nk = w->n_idem, nc = w->n_crash;
    *w = (world){0};
    w->n_inst = ni;
    w->n_snap = ns;
    w->n_op = no;
    w->n_idem = nk;
    w->n_crash = nc;
}

/* Start-up configuration: the part of the cloud that reset restores. */
typedef struct config {
    csl_dist timing[MC_TRANSITION_COUNT];
    char **zones;
    int64_t *limit; /* per zone; -1 is unlimited */
    size_t nzones;
    char **images;
    size_t nimages;
} config;

struct mc_cloud {
    pthread_mutex_t mu;
    pthread_mutex_t save_mu; /* one save at a time: they share a temp name */
    uint64_t seed;
    int64_t now; /* latest time seen: calls never move it back */
    uint64_t gen;
    int64_t due;    /* no transition is due before this */
    bool due_exact; /* false after a cancellation made due a mere bound */
    world w;
    config cfg, base;
};

/* ---------------------------------------------------------------- config */

static void strv_free(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++) free(v[i]);
    free(v);
}

static void config_free(config *k)
{
    strv_free(k->zones, k->nzones);
    strv_free(k->images, k->nimages);
    free(k->limit);
    *k = (config){0};
}

static char **strv_dup(char *const *v, size_t n)
{
    char **out = calloc(n ? n : 1, sizeof *out);
    if (!out) return NULL;
    for (size_t i = 0; i < n; i++) {
        if (!(out[i] = strdup(v[i]))) {
            strv_free(out, i);
            return NULL;
        }
    }
    return out;
}

static int config_copy(config *dst, const config *src)
{
    config k = *src;
    k.zones = strv_dup(src->zones, src->nzones);
    k.images = strv_dup(src->images, src->nimages);
    k.limit = malloc((src->nzones ? src->nzones : 1) * sizeof *k.limit);
    if (!k.zones || !k.images || !k.limit) {
        if (!k.zones) k.nzones = 0;
        if (!k.images) k.nimages = 0;
        config_free(&k);
        return -1;
    }
    memcpy(k.limit, src->limit, src->nzones * sizeof *k.limit);
    *dst = k;
    return 0;
}

static int config_default(config *k)
{
    static char *const zones[] = {"hk-1a", "hk-1b", "hk-2a", "sg-1a", "us-east-1a", "eu-west-1a"};
    static char *const images[] = {"debian-12",    "debian-13", "ubuntu-22.04",
                                   "ubuntu-24.04", "rocky-9",   "alpine-3.20"};
    static const int64_t ms = 1000000;
    static const int64_t lo[MC_TRANSITION_COUNT] = {300, 200, 100, 100, 100, 100, 200};
    static const int64_t hi[MC_TRANSITION_COUNT] = {1000, 600, 300, 300, 300, 400, 800};
    config src = {.nzones = 6, .nimages = 6};
    int64_t limits[6] = {-1, -1, -1, -1, -1, -1};
    src.zones = (char **)zones;
    src.images = (char **)images;
    src.limit = limits;
    for (int t = 0; t < MC_TRANSITION_COUNT; t++)
        src.timing[t] = (csl_dist){CSL_DIST_UNIFORM, lo[t] * ms, hi[t] * ms, 0.0};
    return config_copy(k, &src);
}

static int zone_index(const config *k, const char *zone)
{
    for (size_t i = 0; i < k->nzones; i++)
        if (strcmp(k->zones[i], zone) == 0) return (int)i;
    return -1;
}

static bool image_known(const config *k, const char *image)
{
    for (size_t i = 0; i < k->nimages; i++)
        if (strcmp(k->images[i], image) == 0) return true;
    return false;
}

/* "a, b, c" into out, truncated to fit. */
static void join(char *const *v, size_t n, char *out, size_t outsz)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && used < outsz; i++) {
        int k = snprintf(out + used, outsz - used, "%s%s", i ? ", " : "", v[i]);
        if (k < 0) break;
        used += (size_t)k;
    }
}

/* ---------------------------------------------------------------- names */

const char *mc_state_name(mc_state s)
{
    return (unsigned)s < MC_STATE_COUNT ? state_names[s] : "unknown";
}

int mc_state_parse(const char *name, mc_state *out)
{
    for (int s = 0; name && s < MC_STATE_COUNT; s++) {
        if (strcmp(state_names[s], name) == 0) {
            *out = (mc_state)s;
            return 0;
        }
    }
    return -1;
}

const char *mc_transition_name(mc_transition t)
{
    return (unsigned)t < MC_TRANSITION_COUNT ? transition_names[t] : "unknown";
}

static int transition_parse(const char *name)
{
    for (int t = 0; t < MC_TRANSITION_COUNT; t++)
        if (strcmp(transition_names[t], name) == 0) return t;
    return -1;
}

static int name_index(const char *const *names, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], s) == 0) return (int)i;
    return -1;
}

static const char *json_type_name(const cJSON *j)
{
    if (cJSON_IsNull(j)) return "null";
    if (cJSON_IsBool(j)) return "a boolean";
    if (cJSON_IsNumber(j)) return "a number";
    if (cJSON_IsString(j)) return "a string";
    if (cJSON_IsArray(j)) return "an array";
    return "an object";
}

/* An integral JSON number within the range doubles hold exactly. */
static bool json_int(const cJSON *j, int64_t *out)
{
    if (!cJSON_IsNumber(j)) return false;
    double d = j->valuedouble;
    if (!(d >= -9007199254740992.0 && d <= 9007199254740992.0) || d != floor(d)) return false;
    *out = (int64_t)d;
    return true;
}

/* ---------------------------------------------------------------- replies */

static mc_reply ok(void)
{
    return (mc_reply){0};
}

static mc_reply oom_reply(void)
{
    return mc_reply_error(500, "InternalError", "out of memory");
}

static mc_reply view_reply(int status, cJSON *body)
{
    return body ? mc_reply_json(status, body) : oom_reply();
}

static void set_location(mc_reply *r, const char *op_id)
{
    if (r->body) snprintf(r->location, sizeof r->location, "/v1/operations/%s", op_id);
}

static void add_time(cJSON *o, const char *name, int64_t ms, bool *okp)
{
    char t[CSL_RFC3339_LEN];
    csl_rfc3339_ms(ms, t);
    if (!cJSON_AddStringToObject(o, name, t)) *okp = false;
}

static void add_str(cJSON *o, const char *name, const char *v, bool *okp)
{
    if (!cJSON_AddStringToObject(o, name, v)) *okp = false;
}

static void add_num(cJSON *o, const char *name, double v, bool *okp)
{
    if (!cJSON_AddNumberToObject(o, name, v)) *okp = false;
}

static void add_item(cJSON *o, const char *name, cJSON *item, bool *okp)
{
    if (!item || !cJSON_AddItemToObject(o, name, item)) {
        cJSON_Delete(item);
        *okp = false;
    }
}

static cJSON *finish(cJSON *o, bool okv)
{
    if (okv && o) return o;
    cJSON_Delete(o);
    return NULL;
}

static void format_ip(uint32_t a, char out[16])
{
    snprintf(out, 16, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
}

/* The instance as the API shows it; state overrides the shown state. */
static cJSON *inst_view(const inst *i, const char *state)
{
    bool okv = true;
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    add_str(o, "id", i->e.id, &okv);
    add_str(o, "name", i->name, &okv);
    add_str(o, "state", state ? state : mc_state_name(i->state), &okv);
    add_num(o, "cpu", i->cpu, &okv);
    add_num(o, "memoryMiB", (double)i->memory_mib, &okv);
    add_num(o, "diskGiB", i->disk_gib, &okv);
    add_str(o, "image", i->image, &okv);
    add_str(o, "zone", i->zone, &okv);
    add_str(o, "networkType", net_names[i->net], &okv);
    add_num(o, "ipCount", i->ip_count, &okv);
    cJSON *ips = cJSON_CreateArray();
    for (int k = 0; ips && i->ips && k < i->ip_count; k++) {
        char a[16];
        format_ip(i->ips[k], a);
        if (!cJSON_AddItemToArray(ips, cJSON_CreateString(a))) okv = false;
    }
    add_item(o, "ipAddresses", ips, &okv);
    add_item(o, "tags", i->tags ? cJSON_Duplicate(i->tags, 1) : cJSON_CreateObject(), &okv);
    add_time(o, "createdAt", i->created_ms, &okv);
    add_time(o, "updatedAt", i->updated_ms, &okv);
    return finish(o, okv);
}

/* The text view: the bytes cJSON_PrintUnformatted prints for inst_view(i,
 * NULL), written straight into a buffer, so a GET builds, prints and frees no
 * tree. Strings are escaped as cJSON escapes them (", \, \b \f \n \r \t,
 * other control characters as \u00xx; bytes from 0x7f up pass through), and
 * the numbers are integers far below 2^53, which cJSON's %1.15g prints as
 * plain digits. tests/unit/test_mockcloud_cloud.c holds the two views to
 * the same bytes. */
#define PUT_LIT(b, lit) csl_buf_append((b), (lit), sizeof(lit) - 1)

static void put_json_str(csl_buf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    csl_buf_putc(b, '"');
    for (;;) {
        const unsigned char *run = p;
        while (*p >= 32 && *p != '"' && *p != '\\') p++;
        csl_buf_append(b, run, (size_t)(p - run));
        if (!*p) break;
        char esc[6] = {'\\', (char)*p, '0', '0', hex[*p >> 4], hex[*p & 15]};
        size_t n = 2;
        switch (*p) {
        case '"':
        case '\\':
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            esc[1] = 'u';
            n = 6;
        }
        csl_buf_append(b, esc, n);
        p++;
    }
    csl_buf_putc(b, '"');
}

static void put_int(csl_buf *b, int64_t v)
{
    char d[24];
    size_t k = sizeof d;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do d[--k] = (char)('0' + u % 10);
    while (u /= 10);
    if (v < 0) d[--k] = '-';
    csl_buf_append(b, d + k, sizeof d - k);
}

static void put_ip(csl_buf *b, uint32_t a)
{
    for (int shift = 24; shift >= 0; shift -= 8) {
        put_int(b, (a >> shift) & 255);
        if (shift) csl_buf_putc(b, '.');
    }
}

/* A timestamp, formatted again only when it changed since the last view. */
static void put_time(csl_buf *b, char txt[CSL_RFC3339_LEN], int64_t *txt_ms, int64_t ms)
{
    if (!txt[0] || *txt_ms != ms) {
        csl_rfc3339_ms(ms, txt);
        *txt_ms = ms;
    }
    csl_buf_putc(b, '"');
    csl_buf_puts(b, txt);
    csl_buf_putc(b, '"');
}

/* Appends the text view of i; false when its tags are not an object of
 * strings (never so after validation; the caller then falls back to the
 * tree). Out of memory shows as b->oom. */
static bool inst_text(inst *i, csl_buf *b)
{
    if (i->tags && !cJSON_IsObject(i->tags)) return false;
    for (const cJSON *m = i->tags ? i->tags->child : NULL; m; m = m->next)
        if (!m->string || !cJSON_IsString(m) || !m->valuestring) return false;
    PUT_LIT(b, "{\"id\":");
    put_json_str(b, i->e.id);
    PUT_LIT(b, ",\"name\":");
    put_json_str(b, i->name);
    PUT_LIT(b, ",\"state\":");
    put_json_str(b, mc_state_name(i->state));
    PUT_LIT(b, ",\"cpu\":");
    put_int(b, i->cpu);
    PUT_LIT(b, ",\"memoryMiB\":");
    put_int(b, i->memory_mib);
    PUT_LIT(b, ",\"diskGiB\":");
    put_int(b, i->disk_gib);
    PUT_LIT(b, ",\"image\":");
    put_json_str(b, i->image);
    PUT_LIT(b, ",\"zone\":");
    put_json_str(b, i->zone);
    PUT_LIT(b, ",\"networkType\":");
    put_json_str(b, net_names[i->net]);
    PUT_LIT(b, ",\"ipCount\":");
    put_int(b, i->ip_count);
    PUT_LIT(b, ",\"ipAddresses\":[");
    for (int k = 0; i->ips && k < i->ip_count; k++) {
        if (k) csl_buf_putc(b, ',');
        csl_buf_putc(b, '"');
        put_ip(b, i->ips[k]);
        csl_buf_putc(b, '"');
    }
    PUT_LIT(b, "],\"tags\":{");
    for (const cJSON *m = i->tags ? i->tags->child : NULL; m; m = m->next) {
        if (m != i->tags->child) csl_buf_putc(b, ',');
        put_json_str(b, m->string);
        csl_buf_putc(b, ':');
        put_json_str(b, m->valuestring);
    }
    PUT_LIT(b, "},\"createdAt\":");
    put_time(b, i->created_txt, &i->created_txt_ms, i->created_ms);
    PUT_LIT(b, ",\"updatedAt\":");
    put_time(b, i->updated_txt, &i->updated_txt_ms, i->updated_ms);
    csl_buf_putc(b, '}');
    return true;
}

/* A 200 reply carrying i's text view. */
static mc_reply inst_text_reply(inst *i)
{
    /* A typical view is 300-400 bytes: start big enough for one malloc. */
    csl_buf b = CSL_BUF_INIT;
    b.data = malloc(512);
    if (!b.data) return oom_reply();
    b.data[0] = '\0';
    b.cap = 512;
    if (!inst_text(i, &b)) {
        csl_buf_free(&b);
        return view_reply(200, inst_view(i, NULL));
    }
    size_t len = b.len;
    char *text = csl_buf_steal(&b);
    return text ? mc_reply_text(200, text, len) : oom_reply();
}

static cJSON *snap_view(const snap *s, const char *state)
{
    bool okv = true;
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    add_str(o, "id", s->e.id, &okv);
    add_str(o, "instanceId", s->instance_id, &okv);
    add_str(o, "name", s->name, &okv);
    add_str(o, "state", state ? state : snap_state_names[s->state], &okv);
    add_num(o, "sizeGiB", s->size_gib, &okv);
    add_item(o, "tags", s->tags ? cJSON_Duplicate(s->tags, 1) : cJSON_CreateObject(), &okv);
    add_time(o, "createdAt", s->created_ms, &okv);
    return finish(o, okv);
}

static cJSON *op_view(const op *o)
{
    bool okv = true;
    cJSON *j = cJSON_CreateObject();
    if (!j) return NULL;
    add_str(j, "id", o->e.id, &okv);
    add_str(j, "type", mc_transition_name(o->type), &okv);
    add_str(j, "target", o->target, &okv);
    add_str(j, "state", op_state_names[o->state], &okv);
    add_time(j, "createdAt", o->created_ms, &okv);
    if (o->state != OP_RUNNING) add_time(j, "doneAt", o->done_ms, &okv);
    if (o->state == OP_FAILED) {
        cJSON *e = cJSON_CreateObject();
        if (e) {
            add_str(e, "code", o->code, &okv);
            add_str(e, "message", o->message, &okv);
        }
        add_item(j, "error", e, &okv);
    }
    return finish(j, okv);
}

/* ---------------------------------------------------------------- lifecycle */

/* A transition's duration in ms from its own stream. */
static int64_t draw_ms(const mc_cloud *c, mc_transition t, uint64_t seq, uint32_t n)
{
    csl_rng r;
    csl_rng_derive(&r, c->seed, transition_names[t], (seq << 20) | (n & 0xfffff));
    int64_t ns = csl_dist_sample(&c->cfg.timing[t], &r);
    return ns / 1000000 + (ns % 1000000 >= 500000);
}

static int64_t deadline(int64_t now, int64_t ms)
{
    return ms >= INT64_MAX - 1 - now ? INT64_MAX - 1 : now + ms;
}

/* "<prefix><12 hex>" from (seed, label, seq), unique in ix. */
static void make_id(const mc_cloud *c, const char *prefix, const char *label, uint64_t seq,
                    const smap *ix, char out[ID_LEN])
{
    csl_rng r;
    csl_rng_derive(&r, c->seed, label, seq);
    do
        snprintf(out, ID_LEN, "%s%012" PRIx64, prefix,
                 (uint64_t)(csl_rng_next(&r) & 0xffffffffffffULL));
    while (smap_get(ix, out));
}

static op *op_new(mc_cloud *c, mc_transition type, const char *target)
{
    world *w = &c->w;
    op *o = calloc(1, sizeof *o);
    if (!o) return NULL;
    o->e.seq = ++w->n_op;
    make_id(c, "op-", "operation", o->e.seq, &w->op_ix, o->e.id);
    o->type = type;
    snprintf(o->target, sizeof o->target, "%s", target);
    o->state = OP_RUNNING;
    o->created_ms = c->now;
    if (!pvec_push(&w->ops, o)) goto err;
    if (!smap_put(&w->op_ix, o->e.id, o)) {
        w->ops.n--;
        goto err;
    }
    return o;
err:
    free(o);
    return NULL;
}

static void op_done(op *o, int64_t at)
{
    o->state = OP_DONE;
    o->done_ms = at;
}

static void op_fail(op *o, int64_t at, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void op_fail(op *o, int64_t at, const char *code, const char *fmt, ...)
{
    o->state = OP_FAILED;
    o->done_ms = at;
    snprintf(o->code, sizeof o->code, "%s", code);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(o->message, sizeof o->message, fmt, ap);
    va_end(ap);
}

static void inst_schedule(mc_cloud *c, inst *i, mc_transition t, op *o)
{
    i->pt = t;
    i->op = o;
    i->state = transition_state[t];
    i->updated_ms = c->now;
    i->due_ms = deadline(c->now, draw_ms(c, t, i->e.seq, i->ntrans++));
    if (i->due_ms < c->due) c->due = i->due_ms;
    c->gen++;
}

/* Ends the running transition, failing its operation. */
static void inst_cancel(mc_cloud *c, inst *i, const char *code, const char *why)
{
    if (i->pt == NO_TRANSITION) return;
    op_fail(i->op, c->now, code, "instance %s %s before the %s finished", i->e.id, why,
            transition_names[i->pt]);
    i->pt = NO_TRANSITION;
    i->op = NULL;
    i->due_ms = INT64_MAX;
    c->due_exact = false;
}

/* Addresses 10.x.y.z with z in 1..254, a contiguous run from a point drawn
 * for the instance. They are data only: nothing ever connects to them. */
static bool assign_ips(const mc_cloud *c, inst *i)
{
    uint32_t *ips = calloc((size_t)i->ip_count, sizeof *ips);
    if (!ips) return false;
    csl_rng r;
    csl_rng_derive(&r, c->seed, "ip", i->e.seq);
    uint64_t space = 254ULL * 65536, base = csl_rng_below(&r, space);
    for (int k = 0; k < i->ip_count; k++) {
        uint64_t b = (base + (uint64_t)k) % space;
        ips[k] = (10u << 24) | (uint32_t)(b / (254 * 256)) << 16 | (uint32_t)(b / 254 % 256) << 8 |
                 (uint32_t)(1 + b % 254);
    }
    i->ips = ips;
    return true;
}

/* Drops a gone instance; its creating key keeps a last view for replays. */
static void inst_remove(mc_cloud *c, inst *i, int64_t at)
{
    world *w = &c->w;
    if (i->idem_key) {
        idem *r = smap_get(&w->idem_ix, i->idem_key);
        if (r && r->kind == IDEM_INSTANCE && strcmp(r->target, i->e.id) == 0 && !r->last_view) {
            i->updated_ms = at;
            r->last_view = inst_view(i, "deleted");
        }
    }
    smap_del(&w->inst_ix, i->e.id);
    pvec_remove_ent(&w->inst, &i->e);
    inst_free(i);
}

static void snap_remove(mc_cloud *c, snap *s)
{
    world *w = &c->w;
    if (s->idem_key) {
        idem *r = smap_get(&w->idem_ix, s->idem_key);
        if (r && r->kind == IDEM_SNAPSHOT && strcmp(r->target, s->e.id) == 0 && !r->last_view)
            r->last_view = snap_view(s, "deleted");
    }
    smap_del(&w->snap_ix, s->e.id);
    pvec_remove_ent(&w->snap, &s->e);
    snap_free(s);
}

/* Completes i's transition at its deadline. */
static void inst_complete(mc_cloud *c, inst *i)
{
    int64_t at = i->due_ms;
    mc_transition t = (mc_transition)i->pt;
    op_done(i->op, at);
    i->pt = NO_TRANSITION;
    i->op = NULL;
    i->due_ms = INT64_MAX;
    i->updated_ms = at;
    c->gen++;
    switch (t) {
    case MC_T_DELETE:
        inst_remove(c, i, at);
        return;
    case MC_T_STOP:
        i->state = MC_STOPPED;
        return;
    case MC_T_RESIZE:
        i->cpu = i->r_cpu;
        i->memory_mib = i->r_memory;
        i->disk_gib = i->r_disk;
        break;
    default:
        break;
    }
    i->state = MC_RUNNING;
    /* Without memory for addresses the instance runs without them; the
     * next start or reboot tries again. */
    if (!i->ips) assign_ips(c, i);
}

static void recompute_due(mc_cloud *c)
{
    int64_t due = INT64_MAX;
    for (size_t k = 0; k < c->w.inst.n; k++) {
        const inst *i = c->w.inst.v[k];
        if (i->pt != NO_TRANSITION && i->due_ms < due) due = i->due_ms;
    }
    for (size_t k = 0; k < c->w.snap.n; k++) {
        const snap *s = c->w.snap.v[k];
        if (s->state == SNAP_CREATING && s->due_ms < due) due = s->due_ms;
    }
    c->due = due;
    c->due_exact = true;
}

/* Each transition touches only its own entity, operation and key record,
 * so the order in which due ones are applied cannot change the outcome. */
static void apply_due(mc_cloud *c)
{
    world *w = &c->w;
    for (size_t k = w->inst.n; k-- > 0;) {
        inst *i = w->inst.v[k];
        if (i->pt != NO_TRANSITION && i->due_ms <= c->now) inst_complete(c, i);
    }
    for (size_t k = 0; k < w->snap.n; k++) {
        snap *s = w->snap.v[k];
        if (s->state != SNAP_CREATING || s->due_ms > c->now) continue;
        s->state = SNAP_AVAILABLE;
        op_done(s->op, s->due_ms);
        s->op = NULL;
        s->due_ms = INT64_MAX;
        c->gen++;
    }
    recompute_due(c);
}

/* Keys expire MC_IDEMPOTENCY_TTL_MS after their request, finished
 * operations as long after they end. Both lists are in creation order, so
 * expiry only looks at their heads; an old operation still running holds
 * younger finished ones back, which only delays their cleanup. */
static void prune(mc_cloud *c)
{
    world *w = &c->w;
    while (w->idem.n) {
        idem *r = w->idem.v[0];
        if (r->created_ms > c->now - MC_IDEMPOTENCY_TTL_MS) break;
        smap_del(&w->idem_ix, r->key);
        pvec_remove(&w->idem, 0);
        idem_free(r);
        c->gen++;
    }
    while (w->ops.n) {
        op *o = w->ops.v[0];
        if (o->state == OP_RUNNING || o->done_ms > c->now - MC_OPERATION_TTL_MS) break;
        smap_del(&w->op_ix, o->e.id);
        pvec_remove(&w->ops, 0);
        op_free(o);
        c->gen++;
    }
}

static void advance(mc_cloud *c, int64_t now_ms)
{
    if (now_ms > c->now) c->now = now_ms;
    if (c->due <= c->now) apply_due(c);
    prune(c);
}

static void lock(mc_cloud *c)
{
    pthread_mutex_lock(&c->mu);
}

static void unlock(mc_cloud *c)
{
    pthread_mutex_unlock(&c->mu);
}

/* ---------------------------------------------------------------- lifetime */

mc_cloud *mc_cloud_new(uint64_t seed)
{
    mc_cloud *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    if (config_default(&c->cfg) < 0) goto err;
    if (config_copy(&c->base, &c->cfg) < 0) goto err;
    pthread_mutex_init(&c->mu, NULL);
    pthread_mutex_init(&c->save_mu, NULL);
    c->seed = seed;
    c->now = 0;
    c->due = INT64_MAX;
    c->due_exact = true;
    return c;
err:
    config_free(&c->cfg);
    config_free(&c->base);
    free(c);
    return NULL;
}

void mc_cloud_free(mc_cloud *c)
{
    if (!c) return;
    world_free(&c->w);
    config_free(&c->cfg);
    config_free(&c->base);
    pthread_mutex_destroy(&c->mu);
    pthread_mutex_destroy(&c->save_mu);
    free(c);
}

void mc_cloud_advance(mc_cloud *c, int64_t now_ms)
{
    lock(c);
    advance(c, now_ms);
    unlock(c);
}

int64_t mc_cloud_next_deadline(mc_cloud *c)
{
    lock(c);
    if (!c->due_exact) recompute_due(c);
    int64_t due = c->due;
    unlock(c);
    return due;
}

uint64_t mc_cloud_generation(mc_cloud *c)
{
    lock(c);
    uint64_t g = c->gen;
    unlock(c);
    return g;
}

/* ---------------------------------------------------------------- request validation */

/* Parses a request body that must be a JSON object; an empty body is {}
 * when empty_ok. Returns ok() or the 400 to send. */
static mc_reply parse_body(const char *body, size_t len, bool empty_ok, cJSON **out)
{
    size_t at = 0;
    *out = NULL;
    while (body && at < len && isspace((unsigned char)body[at])) at++;
    if (!body || at == len) {
        if (!empty_ok)
            return mc_reply_error(400, "InvalidRequest",
                                  "the request body is empty: send a JSON object");
        *out = cJSON_CreateObject();
        return *out ? ok() : oom_reply();
    }
    const char *end = NULL;
    cJSON *doc = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (!doc)
        return mc_reply_error(400, "InvalidRequest", "malformed JSON at byte %zu",
                              end ? (size_t)(end - body) : (size_t)0);
    at = (size_t)(end - body);
    while (at < len && isspace((unsigned char)body[at])) at++;
    if (at < len) {
        cJSON_Delete(doc);
        return mc_reply_error(400, "InvalidRequest",
                              "malformed JSON at byte %zu: unexpected data after the object", at);
    }
    if (!cJSON_IsObject(doc)) {
        mc_reply r =
            mc_reply_error(400, "InvalidRequest", "the request body must be a JSON object, not %s",
                           json_type_name(doc));
        cJSON_Delete(doc);
        return r;
    }
    *out = doc;
    return ok();
}

/* FT_TAG_PATCH: like FT_TAGS, but a null value (remove the tag) is allowed. */
typedef enum { FT_STRING, FT_INT, FT_TAGS, FT_TAG_PATCH } ftype;

typedef struct fspec {
    const char *name;
    ftype type;
    bool required;
    int64_t min, max; /* value range, or length range for strings */
} fspec;

/* Checks a tags object. On failure writes a reason naming field. */
static bool tags_valid(const cJSON *t, const char *field, char *msg, size_t msgsz)
{
    if (!cJSON_IsObject(t)) {
        snprintf(msg, msgsz, "field \"%s\" must be an object of string values, not %s", field,
                 json_type_name(t));
        return false;
    }
    int n = 0;
    for (const cJSON *m = t->child; m; m = m->next) {
        if (++n > TAGS_MAX) {
            snprintf(msg, msgsz, "field \"%s\" has more than %d entries", field, TAGS_MAX);
            return false;
        }
        size_t klen = strlen(m->string);
        if (klen == 0 || klen > TEXT_MAX) {
            snprintf(msg, msgsz, "field \"%s\": key \"%.40s\" must be 1 to %d characters long",
                     field, m->string, TEXT_MAX);
            return false;
        }
        if (!cJSON_IsString(m)) {
            snprintf(msg, msgsz, "field \"%s\": the value of \"%.64s\" must be a string, not %s",
                     field, m->string, json_type_name(m));
            return false;
        }
        if (strlen(m->valuestring) > TEXT_MAX) {
            snprintf(msg, msgsz,
                     "field \"%s\": the value of \"%.64s\" is longer than %d characters", field,
                     m->string, TEXT_MAX);
            return false;
        }
        for (const cJSON *p = t->child; p != m; p = p->next) {
            if (strcmp(p->string, m->string) == 0) {
                snprintf(msg, msgsz, "field \"%s\": key \"%.64s\" appears twice", field, m->string);
                return false;
            }
        }
    }
    return true;
}

/* A tag patch: tags_valid's rules, except that null (remove) is a value. */
static bool tags_valid_patch(const cJSON *t, const char *field, char *msg, size_t msgsz)
{
    if (!cJSON_IsObject(t)) return tags_valid(t, field, msg, msgsz);
    cJSON *probe = cJSON_Duplicate(t, 1);
    if (!probe) {
        snprintf(msg, msgsz, "out of memory");
        return false;
    }
    for (cJSON *m = probe->child; m; m = m->next) {
        if (cJSON_IsNull(m)) {
            m->type = cJSON_String;
            m->valuestring = strdup("");
            if (!m->valuestring) {
                cJSON_Delete(probe);
                snprintf(msg, msgsz, "out of memory");
                return false;
            }
        }
    }
    bool ok = tags_valid(probe, field, msg, msgsz);
    cJSON_Delete(probe);
    return ok;
}

static const fspec *spec_find(const fspec *f, size_t nf, const char *name)
{
    for (size_t i = 0; i < nf; i++)
        if (strcmp(f[i].name, name) == 0) return &f[i];
    return NULL;
}

/* Unknown, repeated, mistyped, missing and out-of-range fields, each a 400
 * InvalidRequest naming the field. */
static mc_reply check_fields(const cJSON *doc, const fspec *f, size_t nf)
{
    char msg[400];
    for (const cJSON *m = doc->child; m; m = m->next) {
        const fspec *s = spec_find(f, nf, m->string);
        if (!s) {
            csl_buf b = CSL_BUF_INIT;
            for (size_t i = 0; i < nf; i++) csl_buf_printf(&b, "%s%s", i ? ", " : "", f[i].name);
            mc_reply r =
                mc_reply_error(400, "InvalidRequest", "unknown field \"%.64s\": the fields are %s",
                               m->string, csl_buf_str(&b));
            csl_buf_free(&b);
            return r;
        }
        for (const cJSON *p = doc->child; p != m; p = p->next)
            if (strcmp(p->string, m->string) == 0)
                return mc_reply_error(400, "InvalidRequest", "field \"%s\" appears twice", s->name);
        int64_t v;
        switch (s->type) {
        case FT_STRING: {
            if (!cJSON_IsString(m))
                return mc_reply_error(400, "InvalidRequest",
                                      "field \"%s\" must be a string, not %s", s->name,
                                      json_type_name(m));
            size_t len = strlen(m->valuestring);
            if ((int64_t)len < s->min || (int64_t)len > s->max)
                return mc_reply_error(400, "InvalidRequest",
                                      "field \"%s\" must be %" PRId64 " to %" PRId64
                                      " characters long, got %zu",
                                      s->name, s->min, s->max, len);
            break;
        }
        case FT_INT:
            if (!json_int(m, &v))
                return mc_reply_error(400, "InvalidRequest",
                                      "field \"%s\" must be an integer, not %s", s->name,
                                      cJSON_IsNumber(m) ? "a fraction" : json_type_name(m));
            if (v < s->min || v > s->max)
                return mc_reply_error(400, "InvalidRequest",
                                      "field \"%s\" must be from %" PRId64 " to %" PRId64
                                      ", got %" PRId64,
                                      s->name, s->min, s->max, v);
            break;
        case FT_TAGS:
            if (!tags_valid(m, s->name, msg, sizeof msg))
                return mc_reply_error(400, "InvalidRequest", "%s", msg);
            break;
        case FT_TAG_PATCH:
            if (!tags_valid_patch(m, s->name, msg, sizeof msg))
                return mc_reply_error(400, "InvalidRequest", "%s", msg);
            break;
        }
    }
    for (size_t i = 0; i < nf; i++)
        if (f[i].required && !cJSON_GetObjectItemCaseSensitive(doc, f[i].name))
            return mc_reply_error(400, "InvalidRequest", "missing required field \"%s\"",
                                  f[i].name);
    return ok();
}

static const char *get_str(const cJSON *doc, const char *name, const char *dflt)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(doc, name);
    return cJSON_IsString(j) ? j->valuestring : dflt;
}

static int64_t get_int(const cJSON *doc, const char *name, int64_t dflt)
{
    int64_t v;
    return json_int(cJSON_GetObjectItemCaseSensitive(doc, name), &v) ? v : dflt;
}

static mc_reply check_idem_key(const char *key)
{
    size_t n = strlen(key);
    bool printable = n > 0 && n <= IDEM_KEY_MAX;
    for (size_t i = 0; printable && i < n; i++) printable = key[i] >= 0x20 && key[i] < 0x7f;
    if (!printable)
        return mc_reply_error(400, "InvalidRequest",
                              "header \"Idempotency-Key\" must be 1 to %d printable ASCII "
                              "characters",
                              IDEM_KEY_MAX);
    return ok();
}

/* ---------------------------------------------------------------- idempotency */

/* Answers a request whose key is already recorded. */
static mc_reply idem_replay(mc_cloud *c, const idem *r, const char *request, const cJSON *doc)
{
    if (strcmp(r->request, request) != 0 || !cJSON_Compare(r->body, doc, 1))
        return mc_reply_error(409, "IdempotencyMismatch",
                              "Idempotency-Key \"%.64s\" was first used at %s with another "
                              "request: reuse a key only to repeat the same request, byte for byte "
                              "in meaning",
                              r->key, r->request);
    cJSON *v = NULL;
    if (r->last_view) {
        v = cJSON_Duplicate(r->last_view, 1);
    } else if (r->kind == IDEM_INSTANCE) {
        const inst *i = smap_get(&c->w.inst_ix, r->target);
        v = i ? inst_view(i, NULL) : NULL;
    } else {
        const snap *s = smap_get(&c->w.snap_ix, r->target);
        v = s ? snap_view(s, NULL) : NULL;
    }
    mc_reply rep = view_reply(200, v);
    set_location(&rep, r->op_id);
    return rep;
}

/* Records key → (request, body, target, op); takes *doc. */
static bool idem_record(mc_cloud *c, const char *key, const char *request, cJSON **doc,
                        idem_kind kind, const char *target, const char *op_id)
{
    idem *r = calloc(1, sizeof *r);
    if (!r || !(r->key = strdup(key)) || !(r->request = strdup(request))) goto err;
    r->e.seq = ++c->w.n_idem;
    r->kind = kind;
    snprintf(r->target, sizeof r->target, "%s", target);
    snprintf(r->op_id, sizeof r->op_id, "%s", op_id);
    r->created_ms = c->now;
    if (!pvec_push(&c->w.idem, r)) goto err;
    if (!smap_put(&c->w.idem_ix, r->key, r)) {
        c->w.idem.n--;
        goto err;
    }
    r->body = *doc;
    *doc = NULL;
    return true;
err:
    idem_free(r);
    return false;
}

/* ---------------------------------------------------------------- instances */

static const fspec create_fields[] = {
    {"name", FT_STRING, true, 1, TEXT_MAX},
    {"cpu", FT_INT, true, 1, 128},
    {"memoryMiB", FT_INT, true, 256, MEMORY_MAX_MIB},
    {"diskGiB", FT_INT, true, 10, 65536},
    {"image", FT_STRING, true, 1, TEXT_MAX},
    {"zone", FT_STRING, true, 1, TEXT_MAX},
    {"networkType", FT_STRING, false, 1, TEXT_MAX},
    {"ipCount", FT_INT, false, 1, 256},
    {"tags", FT_TAGS, false, 0, 0},
};
#define NFIELDS(a) (sizeof(a) / sizeof(a)[0])

static size_t zone_use(const mc_cloud *c, const char *zone)
{
    size_t n = 0;
    for (size_t k = 0; k < c->w.inst.n; k++)
        n += strcmp(((const inst *)c->w.inst.v[k])->zone, zone) == 0;
    return n;
}

static mc_reply create_instance(mc_cloud *c, const cJSON *doc, const char *key, cJSON **keep)
{
    char list[1024];
    mc_reply r = check_fields(doc, create_fields, NFIELDS(create_fields));
    if (r.status) return r;
    const char *zone = get_str(doc, "zone", ""), *image = get_str(doc, "image", "");
    const char *net = get_str(doc, "networkType", "standard");
    int zi = zone_index(&c->cfg, zone);
    if (zi < 0) {
        join(c->cfg.zones, c->cfg.nzones, list, sizeof list);
        return mc_reply_error(400, "InvalidZone", "unknown zone \"%.64s\": the zones are %s", zone,
                              list);
    }
    if (!image_known(&c->cfg, image)) {
        join(c->cfg.images, c->cfg.nimages, list, sizeof list);
        return mc_reply_error(400, "InvalidImage", "unknown image \"%.64s\": the images are %s",
                              image, list);
    }
    int ni = name_index(net_names, NET_COUNT, net);
    if (ni < 0)
        return mc_reply_error(400, "InvalidRequest",
                              "field \"networkType\" must be one of standard, cn2-gia, bgp, "
                              "got \"%.64s\"",
                              net);
    int64_t limit = c->cfg.limit[zi];
    if (limit >= 0 && zone_use(c, zone) >= (size_t)limit)
        return mc_reply_error(409, "InsufficientCapacity",
                              "zone %s is at its capacity of %" PRId64
                              " instances: delete one or choose another zone",
                              zone, limit);

    world *w = &c->w;
    inst *i = calloc(1, sizeof *i);
    if (!i) return oom_reply();
    i->e.seq = ++w->n_inst;
    make_id(c, "i-", "instance", i->e.seq, &w->inst_ix, i->e.id);
    i->name = strdup(get_str(doc, "name", ""));
    i->image = strdup(image);
    i->zone = strdup(zone);
    i->cpu = (int)get_int(doc, "cpu", 1);
    i->memory_mib = get_int(doc, "memoryMiB", 256);
    i->disk_gib = (int)get_int(doc, "diskGiB", 10);
    i->net = ni;
    i->ip_count = (int)get_int(doc, "ipCount", 1);
    const cJSON *tags = cJSON_GetObjectItemCaseSensitive(doc, "tags");
    i->tags = tags ? cJSON_Duplicate(tags, 1) : cJSON_CreateObject();
    i->created_ms = c->now;
    i->pt = NO_TRANSITION;
    i->due_ms = INT64_MAX;
    if (key && !(i->idem_key = strdup(key))) goto oom;
    if (!i->name || !i->image || !i->zone || !i->tags) goto oom;
    op *o = op_new(c, MC_T_CREATE, i->e.id);
    if (!o) goto oom;
    if (!pvec_push(&w->inst, i)) goto oom_op;
    if (!smap_put(&w->inst_ix, i->e.id, i)) {
        w->inst.n--;
        goto oom_op;
    }
    inst_schedule(c, i, MC_T_CREATE, o);
    /* Without memory for the record the create stands; only its replay
     * protection is lost, which a client cannot observe until it retries. */
    if (key && !idem_record(c, key, "POST /v1/instances", keep, IDEM_INSTANCE, i->e.id, o->e.id)) {
        free(i->idem_key);
        i->idem_key = NULL;
    }
    r = view_reply(202, inst_view(i, NULL));
    set_location(&r, o->e.id);
    return r;
oom_op:
    /* The operation was the last one pushed: take it back. */
    smap_del(&w->op_ix, o->e.id);
    w->ops.n--;
    op_free(o);
oom:
    inst_free(i);
    return oom_reply();
}

mc_reply mc_api_create_instance(mc_cloud *c, const char *body, size_t len, const char *idem_key,
                                int64_t now_ms)
{
    cJSON *doc = NULL;
    mc_reply r;
    lock(c);
    advance(c, now_ms);
    if (idem_key && (r = check_idem_key(idem_key)).status) goto out;
    if ((r = parse_body(body, len, false, &doc)).status) goto out;
    const idem *rec = idem_key ? smap_get(&c->w.idem_ix, idem_key) : NULL;
    if (rec)
        r = idem_replay(c, rec, "POST /v1/instances", doc);
    else
        r = create_instance(c, doc, idem_key, &doc);
out:
    cJSON_Delete(doc);
    unlock(c);
    return r;
}

static mc_reply not_found(const char *what, const char *id)
{
    return mc_reply_error(404, "NotFound", "%s \"%.64s\" not found", what, id ? id : "");
}

mc_reply mc_api_get_instance(mc_cloud *c, const char *id, int64_t now_ms)
{
    lock(c);
    advance(c, now_ms);
    inst *i = id ? smap_get(&c->w.inst_ix, id) : NULL;
    mc_reply r = i ? inst_text_reply(i) : not_found("instance", id);
    unlock(c);
    return r;
}

/* Page tokens: the last seq shown, in hex, and a check so a mangled token
 * is refused instead of silently restarting the list. */
static void page_token(uint64_t seq, char out[32])
{
    char hex[20];
    snprintf(hex, sizeof hex, "%016" PRIx64, seq);
    snprintf(out, 32, "%s%04x", hex, (unsigned)(csl_hash64(hex) & 0xffff));
}

static int page_token_parse(const char *tok, uint64_t *seq)
{
    if (strlen(tok) != 20) return -1;
    for (const char *p = tok; *p; p++)
        if (!isxdigit((unsigned char)*p) || isupper((unsigned char)*p)) return -1;
    char hex[17];
    memcpy(hex, tok, 16);
    hex[16] = '\0';
    uint64_t v = strtoull(hex, NULL, 16);
    char again[32];
    page_token(v, again);
    if (strcmp(again, tok) != 0) return -1;
    *seq = v;
    return 0;
}

/* Common list arguments: limit and pageToken. */
typedef struct page {
    size_t limit;
    uint64_t after;
} page;

static mc_reply parse_page_arg(const mc_kv *a, page *pg, bool *seen_limit, bool *seen_token)
{
    if (strcmp(a->key, "limit") == 0) {
        if (*seen_limit)
            return mc_reply_error(400, "InvalidRequest", "argument \"limit\" is repeated");
        *seen_limit = true;
        const char *v = a->value ? a->value : "";
        char *end;
        errno = 0;
        long n = isdigit((unsigned char)v[0]) ? strtol(v, &end, 10) : 0;
        if (!isdigit((unsigned char)v[0]) || *end || errno || n < 1 || n > LIST_LIMIT_MAX)
            return mc_reply_error(400, "InvalidRequest",
                                  "argument \"limit\" must be an integer from 1 to %d, got "
                                  "\"%.32s\"",
                                  LIST_LIMIT_MAX, v);
        pg->limit = (size_t)n;
        return ok();
    }
    if (*seen_token)
        return mc_reply_error(400, "InvalidRequest", "argument \"pageToken\" is repeated");
    *seen_token = true;
    if (page_token_parse(a->value ? a->value : "", &pg->after) < 0)
        return mc_reply_error(400, "InvalidPageToken",
                              "pageToken \"%.40s\" is not one this server gave: pass the "
                              "nextPageToken of the previous page unchanged",
                              a->value ? a->value : "");
    return ok();
}

/* The list reply: items is taken; more says a next page exists after
 * last_seq. */
static mc_reply list_reply(cJSON *items, bool more, uint64_t last_seq)
{
    cJSON *o = cJSON_CreateObject();
    bool okv = o != NULL;
    if (o)
        add_item(o, "items", items, &okv);
    else
        cJSON_Delete(items);
    if (okv && more) {
        char tok[32];
        page_token(last_seq, tok);
        add_str(o, "nextPageToken", tok, &okv);
    }
    return view_reply(200, finish(o, okv));
}

typedef struct tag_filter {
    const char *arg; /* "k=v" */
    size_t klen;
} tag_filter;

static bool tags_match(const cJSON *tags, const tag_filter *f, size_t nf)
{
    for (size_t k = 0; k < nf; k++) {
        bool hit = false;
        for (const cJSON *m = tags ? tags->child : NULL; m && !hit; m = m->next)
            hit = strlen(m->string) == f[k].klen && memcmp(m->string, f[k].arg, f[k].klen) == 0 &&
                  strcmp(m->valuestring, f[k].arg + f[k].klen + 1) == 0;
        if (!hit) return false;
    }
    return true;
}

mc_reply mc_api_list_instances(mc_cloud *c, const mc_kv *query, size_t nquery, int64_t now_ms)
{
    mc_reply r = ok();
    char list[1024];
    page pg = {LIST_LIMIT_DEFAULT, 0};
    bool seen_limit = false, seen_token = false;
    const char *zone = NULL;
    mc_state state = MC_PENDING;
    bool by_state = false;
    tag_filter *tf = calloc(nquery ? nquery : 1, sizeof *tf);
    size_t ntf = 0;
    if (!tf) return oom_reply();
    lock(c);
    advance(c, now_ms);
    for (size_t q = 0; q < nquery && !r.status; q++) {
        const mc_kv *a = &query[q];
        const char *v = a->value ? a->value : "";
        if (strcmp(a->key, "tag") == 0) {
            const char *eq = strchr(v, '=');
            if (!eq || eq == v)
                r = mc_reply_error(400, "InvalidRequest",
                                   "argument \"tag\" must be key=value, got \"%.64s\"", v);
            else
                tf[ntf++] = (tag_filter){v, (size_t)(eq - v)};
        } else if (strcmp(a->key, "zone") == 0) {
            if (zone)
                r = mc_reply_error(400, "InvalidRequest", "argument \"zone\" is repeated");
            else if (zone_index(&c->cfg, v) < 0) {
                join(c->cfg.zones, c->cfg.nzones, list, sizeof list);
                r = mc_reply_error(400, "InvalidZone", "unknown zone \"%.64s\": the zones are %s",
                                   v, list);
            }
            zone = v;
        } else if (strcmp(a->key, "state") == 0) {
            if (by_state)
                r = mc_reply_error(400, "InvalidRequest", "argument \"state\" is repeated");
            else if (mc_state_parse(v, &state) < 0)
                r = mc_reply_error(400, "InvalidRequest",
                                   "argument \"state\" must be one of pending, running, resizing, "
                                   "stopping, stopped, starting, rebooting, deleting, crashed; "
                                   "got \"%.32s\"",
                                   v);
            by_state = true;
        } else if (strcmp(a->key, "limit") == 0 || strcmp(a->key, "pageToken") == 0) {
            r = parse_page_arg(a, &pg, &seen_limit, &seen_token);
        } else {
            r = mc_reply_error(400, "InvalidRequest",
                               "unknown argument \"%.64s\": the arguments are tag, zone, state, "
                               "limit, pageToken",
                               a->key);
        }
    }
    if (r.status) goto out;
    cJSON *items = cJSON_CreateArray();
    bool more = false;
    uint64_t last = 0;
    size_t shown = 0;
    for (size_t k = pvec_lower(&c->w.inst, pg.after + 1); items && k < c->w.inst.n; k++) {
        const inst *i = c->w.inst.v[k];
        if ((zone && strcmp(i->zone, zone) != 0) || (by_state && i->state != state) ||
            !tags_match(i->tags, tf, ntf))
            continue;
        if (shown == pg.limit) {
            more = true;
            break;
        }
        if (!cJSON_AddItemToArray(items, inst_view(i, NULL))) {
            cJSON_Delete(items);
            items = NULL;
        }
        shown++;
        last = i->e.seq;
    }
    r = items ? list_reply(items, more, last) : oom_reply();
out:
    unlock(c);
    free(tf);
    return r;
}

static const fspec resize_fields[] = {
    {"cpu", FT_INT, false, 1, 128},
    {"memoryMiB", FT_INT, false, 256, MEMORY_MAX_MIB},
    {"diskGiB", FT_INT, false, 10, 65536},
    {"tags", FT_TAG_PATCH, false, 0, 0},
};

/* The instance's tags with patch applied (a JSON merge patch: a string sets,
 * null removes). NULL with *r set when the result has too many tags. */
static cJSON *tags_merged(const inst *i, const cJSON *patch, mc_reply *r)
{
    cJSON *t = i->tags ? cJSON_Duplicate(i->tags, 1) : cJSON_CreateObject();
    if (!t) goto oom;
    for (const cJSON *m = patch->child; m; m = m->next) {
        cJSON_DeleteItemFromObjectCaseSensitive(t, m->string);
        if (cJSON_IsString(m) && !cJSON_AddStringToObject(t, m->string, m->valuestring)) goto oom;
    }
    if (cJSON_GetArraySize(t) > TAGS_MAX) {
        cJSON_Delete(t);
        *r = mc_reply_error(400, "InvalidRequest", "field \"tags\": the instance would have more "
                            "than %d tags", TAGS_MAX);
        return NULL;
    }
    return t;
oom:
    cJSON_Delete(t);
    *r = oom_reply();
    return NULL;
}

/* Replaces i's tags with *tags (taking it) when a patch gave some. */
static void tags_apply(mc_cloud *c, inst *i, cJSON **tags)
{
    if (!*tags) return;
    if (!cJSON_Compare(i->tags, *tags, true)) {
        cJSON_Delete(i->tags);
        i->tags = *tags;
        i->updated_ms = c->now;
        c->gen++;
    } else {
        cJSON_Delete(*tags);
    }
    *tags = NULL;
}

static mc_reply invalid_state(const inst *i, const char *action, const char *need)
{
    return mc_reply_error(409, "InvalidState", "cannot %s instance %s: it is %s, and %s needs %s",
                          action, i->e.id, mc_state_name(i->state), action, need);
}

static mc_reply resize_size(mc_cloud *c, inst *i, const cJSON *doc, cJSON **tags);

static mc_reply resize(mc_cloud *c, inst *i, const cJSON *doc)
{
    mc_reply r = check_fields(doc, resize_fields, NFIELDS(resize_fields));
    if (r.status) return r;
    if (!doc->child)
        return mc_reply_error(400, "InvalidRequest",
                              "nothing to change: give at least one of cpu, memoryMiB, diskGiB, "
                              "tags");
    cJSON *tags = NULL;
    const cJSON *tag_patch = cJSON_GetObjectItemCaseSensitive(doc, "tags");
    if (tag_patch && !(tags = tags_merged(i, tag_patch, &r))) return r;
    r = resize_size(c, i, doc, &tags);
    cJSON_Delete(tags);
    return r;
}

/* The size part of a PATCH; on success it applies *tags too, so a refused
 * resize changes nothing at all. */
static mc_reply resize_size(mc_cloud *c, inst *i, const cJSON *doc, cJSON **tags)
{
    mc_reply r;
    bool sized = cJSON_GetObjectItemCaseSensitive(doc, "cpu") ||
                 cJSON_GetObjectItemCaseSensitive(doc, "memoryMiB") ||
                 cJSON_GetObjectItemCaseSensitive(doc, "diskGiB");
    if (!sized) {
        if (i->state == MC_DELETING) return invalid_state(i, "change the tags of", "not deleting");
        tags_apply(c, i, tags);
        return view_reply(200, inst_view(i, NULL));
    }
    int cpu = (int)get_int(doc, "cpu", i->cpu);
    int64_t mem = get_int(doc, "memoryMiB", i->memory_mib);
    int disk = (int)get_int(doc, "diskGiB", i->disk_gib);
    if (disk < i->disk_gib)
        return mc_reply_error(400, "DiskShrinkNotAllowed",
                              "diskGiB cannot shrink from %d to %d: disks only grow; create a new "
                              "instance for a smaller disk",
                              i->disk_gib, disk);
    if (i->pt == MC_T_RESIZE) {
        if (cpu != i->r_cpu || mem != i->r_memory || disk != i->r_disk)
            return mc_reply_error(409, "InvalidState",
                                  "cannot resize instance %s: it is resizing to other values; "
                                  "wait until it is running",
                                  i->e.id);
        tags_apply(c, i, tags);
        r = view_reply(202, inst_view(i, NULL));
        set_location(&r, i->op->e.id);
        return r;
    }
    if (cpu == i->cpu && mem == i->memory_mib && disk == i->disk_gib) {
        tags_apply(c, i, tags);
        return view_reply(200, inst_view(i, NULL));
    }
    if (i->state != MC_RUNNING && i->state != MC_STOPPED)
        return invalid_state(i, "resize", "running or stopped");
    op *o = op_new(c, MC_T_RESIZE, i->e.id);
    if (!o) return oom_reply();
    tags_apply(c, i, tags);
    i->r_cpu = cpu;
    i->r_memory = mem;
    i->r_disk = disk;
    inst_schedule(c, i, MC_T_RESIZE, o);
    r = view_reply(202, inst_view(i, NULL));
    set_location(&r, o->e.id);
    return r;
}

mc_reply mc_api_resize_instance(mc_cloud *c, const char *id, const char *body, size_t len,
                                int64_t now_ms)
{
    cJSON *doc = NULL;
    mc_reply r;
    lock(c);
    advance(c, now_ms);
    inst *i = id ? smap_get(&c->w.inst_ix, id) : NULL;
    if (!i)
        r = not_found("instance", id);
    else if (!(r = parse_body(body, len, false, &doc)).status)
        r = resize(c, i, doc);
    cJSON_Delete(doc);
    unlock(c);
    return r;
}

mc_reply mc_api_instance_action(mc_cloud *c, const char *id, const char *action, int64_t now_ms)
{
    mc_transition t;
    const char *need;
    if (action && strcmp(action, "stop") == 0) {
        t = MC_T_STOP;
        need = "running";
    } else if (action && strcmp(action, "start") == 0) {
        t = MC_T_START;
        need = "stopped";
    } else if (action && strcmp(action, "reboot") == 0) {
        t = MC_T_REBOOT;
        need = "running or crashed";
    } else {
        return mc_reply_error(404, "NotFound",
                              "no action \"%.32s\": the actions are start, stop, "
                              "reboot",
                              action ? action : "");
    }
    mc_reply r;
    lock(c);
    advance(c, now_ms);
    inst *i = id ? smap_get(&c->w.inst_ix, id) : NULL;
    if (!i) {
        r = not_found("instance", id);
    } else if (i->pt == (int)t) {
        r = view_reply(202, inst_view(i, NULL));
        set_location(&r, i->op->e.id);
    } else if (!(t == MC_T_STOP && i->state == MC_RUNNING) &&
               !(t == MC_T_START && i->state == MC_STOPPED) &&
               !(t == MC_T_REBOOT && (i->state == MC_RUNNING || i->state == MC_CRASHED))) {
        r = invalid_state(i, action, need);
    } else {
        op *o = op_new(c, t, i->e.id);
        if (o) {
            inst_schedule(c, i, t, o);
            r = view_reply(202, inst_view(i, NULL));
            set_location(&r, o->e.id);
        } else {
            r = oom_reply();
        }
    }
    unlock(c);
    return r;
}

mc_reply mc_api_delete_instance(mc_cloud *c, const char *id, int64_t now_ms)
{
    mc_reply r;
    lock(c);
    advance(c, now_ms);
    inst *i = id ? smap_get(&c->w.inst_ix, id) : NULL;
    if (!i) {
        r = not_found("instance", id);
    } else if (i->pt == MC_T_DELETE) {
        r = view_reply(202, inst_view(i, NULL));
        set_location(&r, i->op->e.id);
    } else {
        op *o = op_new(c, MC_T_DELETE, i->e.id);
        if (o) {
            inst_cancel(c, i, "InstanceDeleted", "was deleted");
            inst_schedule(c, i, MC_T_DELETE, o);
            r = view_reply(202, inst_view(i, NULL));
            set_location(&r, o->e.id);
        } else {
            r = oom_reply();
        }
    }
    unlock(c);
    return r;
}

/* ---------------------------------------------------------------- snapshots */

static const fspec snapshot_fields[] = {
    {"name", FT_STRING, false, 1, TEXT_MAX},
    {"tags", FT_TAGS, false, 0, 0},
};

static mc_reply create_snapshot(mc_cloud *c, const char *instance_id, const cJSON *doc,
                                const char *key, const char *request, cJSON **keep)
{
    mc_reply r = check_fields(doc, snapshot_fields, NFIELDS(snapshot_fields));
    if (r.status) return r;
    const inst *i = instance_id ? smap_get(&c->w.inst_ix, instance_id) : NULL;
    if (!i) return not_found("instance", instance_id);
    if (i->state != MC_RUNNING && i->state != MC_STOPPED)
        return invalid_state(i, "snapshot", "running or stopped");
    world *w = &c->w;
    snap *s = calloc(1, sizeof *s);
    if (!s) return oom_reply();
    s->e.seq = ++w->n_snap;
    make_id(c, "snap-", "snapshot-id", s->e.seq, &w->snap_ix, s->e.id);
    snprintf(s->instance_id, sizeof s->instance_id, "%s", i->e.id);
    s->name = strdup(get_str(doc, "name", s->e.id));
    const cJSON *tags = cJSON_GetObjectItemCaseSensitive(doc, "tags");
    s->tags = tags ? cJSON_Duplicate(tags, 1) : cJSON_CreateObject();
    s->size_gib = i->disk_gib;
    s->created_ms = c->now;
    s->state = SNAP_CREATING;
    if (!s->name || !s->tags || (key && !(s->idem_key = strdup(key)))) goto oom;
    op *o = op_new(c, MC_T_SNAPSHOT, s->e.id);
    if (!o) goto oom;
    if (!pvec_push(&w->snap, s)) goto oom_op;
    if (!smap_put(&w->snap_ix, s->e.id, s)) {
        w->snap.n--;
        goto oom_op;
    }
    s->op = o;
    s->due_ms = deadline(c->now, draw_ms(c, MC_T_SNAPSHOT, s->e.seq, 0));
    if (s->due_ms < c->due) c->due = s->due_ms;
    c->gen++;
    if (key && !idem_record(c, key, request, keep, IDEM_SNAPSHOT, s->e.id, o->e.id)) {
        free(s->idem_key);
        s->idem_key = NULL;
    }
    r = view_reply(202, snap_view(s, NULL));
    set_location(&r, o->e.id);
    return r;
oom_op:
    smap_del(&w->op_ix, o->e.id);
    w->ops.n--;
    op_free(o);
oom:
    snap_free(s);
    return oom_reply();
}

mc_reply mc_api_create_snapshot(mc_cloud *c, const char *instance_id, const char *body, size_t len,
                                const char *idem_key, int64_t now_ms)
{
    cJSON *doc = NULL;
    mc_reply r;
    char request[128];
    snprintf(request, sizeof request, "POST /v1/instances/%.64s/snapshots",
             instance_id ? instance_id : "");
    lock(c);
    advance(c, now_ms);
    if (idem_key && (r = check_idem_key(idem_key)).status) goto out;
    if ((r = parse_body(body, len, true, &doc)).status) goto out;
    const idem *rec = idem_key ? smap_get(&c->w.idem_ix, idem_key) : NULL;
    if (rec)
        r = idem_replay(c, rec, request, doc);
    else
        r = create_snapshot(c, instance_id, doc, idem_key, request, &doc);
out:
    cJSON_Delete(doc);
    unlock(c);
    return r;
}

mc_reply mc_api_list_snapshots(mc_cloud *c, const mc_kv *query, size_t nquery, int64_t now_ms)
{
    mc_reply r = ok();
    page pg = {LIST_LIMIT_DEFAULT, 0};
    bool seen_limit = false, seen_token = false;
    const char *instance = NULL;
    lock(c);
    advance(c, now_ms);
    for (size_t q = 0; q < nquery && !r.status; q++) {
        const mc_kv *a = &query[q];
        if (strcmp(a->key, "instance") == 0) {
            if (instance)
                r = mc_reply_error(400, "InvalidRequest", "argument \"instance\" is repeated");
            instance = a->value ? a->value : "";
        } else if (strcmp(a->key, "limit") == 0 || strcmp(a->key, "pageToken") == 0) {
            r = parse_page_arg(a, &pg, &seen_limit, &seen_token);
        } else {
            r = mc_reply_error(400, "InvalidRequest",
                               "unknown argument \"%.64s\": the arguments are instance, limit, "
                               "pageToken",
                               a->key);
        }
    }
    if (r.status) goto out;
    cJSON *items = cJSON_CreateArray();
    bool more = false;
    uint64_t last = 0;
    size_t shown = 0;
    for (size_t k = pvec_lower(&c->w.snap, pg.after + 1); items && k < c->w.snap.n; k++) {
        const snap *s = c->w.snap.v[k];
        if (instance && strcmp(s->instance_id, instance) != 0) continue;
        if (shown == pg.limit) {
            more = true;
            break;
        }
        if (!cJSON_AddItemToArray(items, snap_view(s, NULL))) {
            cJSON_Delete(items);
            items = NULL;
        }
        shown++;
        last = s->e.seq;
    }
    r = items ? list_reply(items, more, last) : oom_reply();
out:
    unlock(c);
    return r;
}

mc_reply mc_api_get_snapshot(mc_cloud *c, const char *id, int64_t now_ms)
{
    lock(c);
    advance(c, now_ms);
    const snap *s = id ? smap_get(&c->w.snap_ix, id) : NULL;
    mc_reply r = s ? view_reply(200, snap_view(s, NULL)) : not_found("snapshot", id);
    unlock(c);
    return r;
}

mc_reply mc_api_delete_snapshot(mc_cloud *c, const char *id, int64_t now_ms)
{
    mc_reply r = mc_reply_json(204, NULL);
    lock(c);
    advance(c, now_ms);
    snap *s = id ? smap_get(&c->w.snap_ix, id) : NULL;
    if (!s) {
        r = not_found("snapshot", id);
    } else {
        if (s->state == SNAP_CREATING) {
            op_fail(s->op, c->now, "SnapshotDeleted",
                    "snapshot %s was deleted before it became available", s->e.id);
            c->due_exact = false;
        }
        snap_remove(c, s);
        c->gen++;
    }
    unlock(c);
    return r;
}

mc_reply mc_api_get_operation(mc_cloud *c, const char *id, int64_t now_ms)
{
    lock(c);
    advance(c, now_ms);
    const op *o = id ? smap_get(&c->w.op_ix, id) : NULL;
    mc_reply r = o ? view_reply(200, op_view(o))
                   : mc_reply_error(404, "NotFound",
                                    "operation \"%.64s\" not found (operations are kept 24 h "
                                    "after they finish)",
                                    id ? id : "");
    unlock(c);
    return r;
}

/* ---------------------------------------------------------------- chaos */

static int seq_cmp(const void *a, const void *b)
{
    uint64_t x = (*(const ent *const *)a)->seq, y = (*(const ent *const *)b)->seq;
    return x < y ? -1 : x > y;
}

/* Validates a crash body into its selector. */
typedef struct crash_sel {
    const cJSON *ids;
    int64_t count;   /* -1: not given */
    double fraction; /* < 0: not given */
    const char *zone;
    bool by_state;
    mc_state state;
} crash_sel;

static mc_reply parse_crash(const mc_cloud *c, const cJSON *doc, crash_sel *s)
{
    char list[1024];
    *s = (crash_sel){.count = -1, .fraction = -1, .state = MC_RUNNING};
    for (const cJSON *m = doc->child; m; m = m->next) {
        for (const cJSON *p = doc->child; p != m; p = p->next)
            if (strcmp(p->string, m->string) == 0)
                return mc_reply_error(400, "InvalidRequest", "field \"%.64s\" appears twice",
                                      m->string);
        if (strcmp(m->string, "ids") == 0) {
            if (!cJSON_IsArray(m) || !m->child)
                return mc_reply_error(400, "InvalidRequest",
                                      "field \"ids\" must be a non-empty array of instance ids");
            for (const cJSON *e = m->child; e; e = e->next)
                if (!cJSON_IsString(e))
                    return mc_reply_error(400, "InvalidRequest",
                                          "field \"ids\" must hold strings, not %s",
                                          json_type_name(e));
            s->ids = m;
        } else if (strcmp(m->string, "count") == 0) {
            if (!json_int(m, &s->count) || s->count < 0)
                return mc_reply_error(400, "InvalidRequest",
                                      "field \"count\" must be an integer of 0 or more");
        } else if (strcmp(m->string, "fraction") == 0) {
            if (!cJSON_IsNumber(m) || !(m->valuedouble >= 0 && m->valuedouble <= 1))
                return mc_reply_error(400, "InvalidRequest",
                                      "field \"fraction\" must be a number from 0 to 1");
            s->fraction = m->valuedouble;
        } else if (strcmp(m->string, "zone") == 0) {
            if (!cJSON_IsString(m))
                return mc_reply_error(400, "InvalidRequest",
                                      "field \"zone\" must be a string, not %s", json_type_name(m));
            if (zone_index(&c->cfg, m->valuestring) < 0) {
                join(c->cfg.zones, c->cfg.nzones, list, sizeof list);
                return mc_reply_error(400, "InvalidZone",
                                      "unknown zone \"%.64s\": the zones are %s", m->valuestring,
                                      list);
            }
            s->zone = m->valuestring;
        } else if (strcmp(m->string, "state") == 0) {
            if (!cJSON_IsString(m) || mc_state_parse(m->valuestring, &s->state) < 0 ||
                s->state == MC_DELETING || s->state == MC_CRASHED)
                return mc_reply_error(400, "InvalidRequest",
                                      "field \"state\" must be one of pending, running, resizing, "
                                      "stopping, stopped, starting, rebooting");
            s->by_state = true;
        } else {
            return mc_reply_error(400, "InvalidRequest",
                                  "unknown field \"%.64s\": the fields are ids, count, fraction, "
                                  "zone, state",
                                  m->string);
        }
    }
    if (s->ids && (s->count >= 0 || s->fraction >= 0 || s->zone))
        return mc_reply_error(400, "InvalidRequest",
                              "field \"ids\" cannot be combined with count, fraction or zone");
    if (s->count >= 0 && s->fraction >= 0)
        return mc_reply_error(400, "InvalidRequest",
                              "fields \"count\" and \"fraction\" cannot be combined: give one");
    if (!s->ids && s->count < 0 && s->fraction < 0 && !s->zone)
        return mc_reply_error(400, "InvalidRequest",
                              "no selector: give one of ids, count, fraction or zone");
    return ok();
}

static void crash(mc_cloud *c, inst *i)
{
    inst_cancel(c, i, "InstanceCrashed", "crashed");
    i->state = MC_CRASHED;
    i->updated_ms = c->now;
    c->gen++;
}

mc_reply mc_ctl_crash(mc_cloud *c, const char *body, size_t len, int64_t now_ms)
{
    cJSON *doc = NULL;
    inst **cand = NULL;
    size_t n = 0, k;
    crash_sel s;
    mc_reply r;
    lock(c);
    advance(c, now_ms);
    if ((r = parse_body(body, len, false, &doc)).status) goto out;
    if ((r = parse_crash(c, doc, &s)).status) goto out;
    world *w = &c->w;
    if (!(cand = malloc((w->inst.n ? w->inst.n : 1) * sizeof *cand))) goto oom;
    if (s.ids) {
        for (const cJSON *e = s.ids->child; e; e = e->next)
            if (!smap_get(&w->inst_ix, e->valuestring)) {
                r = not_found("instance", e->valuestring);
                goto out;
            }
        for (const cJSON *e = s.ids->child; e; e = e->next) {
            inst *i = smap_get(&w->inst_ix, e->valuestring);
            bool dup = false;
            for (size_t d = 0; d < n && !dup; d++) dup = cand[d] == i;
            if (!dup && i->state != MC_DELETING && i->state != MC_CRASHED &&
                (!s.by_state || i->state == s.state))
                cand[n++] = i;
        }
        qsort(cand, n, sizeof *cand, seq_cmp);
        k = n;
    } else {
        for (size_t q = 0; q < w->inst.n; q++) {
            inst *i = w->inst.v[q];
            if (i->state == s.state && (!s.zone || strcmp(i->zone, s.zone) == 0)) cand[n++] = i;
        }
        k = n;
        if (s.count >= 0 && (uint64_t)s.count < n) k = (size_t)s.count;
        if (s.fraction >= 0) k = (size_t)floor(s.fraction * (double)n + 0.5);
        /* A partial Fisher–Yates over the creation-ordered candidates,
         * from this crash call's own stream. */
        csl_rng rng;
        csl_rng_derive(&rng, c->seed, "crash", ++w->n_crash);
        for (size_t q = 0; q < k; q++) {
            size_t j = q + (size_t)csl_rng_below(&rng, n - q);
            inst *t = cand[q];
            cand[q] = cand[j];
            cand[j] = t;
        }
        qsort(cand, k, sizeof *cand, seq_cmp);
        c->gen++;
    }
    cJSON *out = cJSON_CreateObject(), *ids = cJSON_AddArrayToObject(out, "crashed");
    if (!ids) {
        cJSON_Delete(out);
        goto oom;
    }
    for (size_t q = 0; q < k; q++) {
        crash(c, cand[q]);
        cJSON_AddItemToArray(ids, cJSON_CreateString(cand[q]->e.id));
    }
    r = mc_reply_json(200, out);
    goto out;
oom:
    r = oom_reply();
out:
    free(cand);
    cJSON_Delete(doc);
    unlock(c);
    return r;
}

/* ---------------------------------------------------------------- timings and capacity */

/* Partial update of t from {"create": <dist>, …}. */
static int parse_timings(const cJSON *j, csl_dist t[MC_TRANSITION_COUNT], char *err, size_t errsz,
                         const cJSON **bad)
{
    char derr[256];
    if (!cJSON_IsObject(j)) {
        snprintf(err, errsz, "timings must be an object of transition → distribution, not %s",
                 json_type_name(j));
        if (bad) *bad = j;
        return -1;
    }
    for (const cJSON *m = j->child; m; m = m->next) {
        int k = transition_parse(m->string);
        if (k < 0) {
            snprintf(err, errsz,
                     "unknown transition \"%.64s\": the transitions are create, resize, stop, "
                     "start, reboot, delete, snapshot",
                     m->string);
            if (bad) *bad = m;
            return -1;
        }
        if (csl_dist_from_json(m, &t[k], derr, sizeof derr, bad) < 0) {
            snprintf(err, errsz, "%s: %s", m->string, derr);
            if (bad && !*bad) *bad = m;
            return -1;
        }
    }
    return 0;
}

static cJSON *timings_json(const config *k)
{
    cJSON *o = cJSON_CreateObject();
    bool okv = o != NULL;
    for (int t = 0; okv && t < MC_TRANSITION_COUNT; t++)
        add_item(o, transition_names[t], csl_dist_to_json(&k->timing[t]), &okv);
    return finish(o, okv);
}

mc_reply mc_ctl_get_timings(mc_cloud *c)
{
    lock(c);
    mc_reply r = view_reply(200, timings_json(&c->cfg));
    unlock(c);
    return r;
}

mc_reply mc_ctl_set_timings(mc_cloud *c, const char *body, size_t len)
{
    cJSON *doc = NULL;
    char err[400];
    csl_dist t[MC_TRANSITION_COUNT];
    lock(c);
    mc_reply r = parse_body(body, len, false, &doc);
    if (!r.status) {
        memcpy(t, c->cfg.timing, sizeof t);
        if (parse_timings(doc, t, err, sizeof err, NULL) < 0) {
            r = mc_reply_error(400, "InvalidRequest", "%s", err);
        } else {
            memcpy(c->cfg.timing, t, sizeof t);
            r = view_reply(200, timings_json(&c->cfg));
        }
    }
    cJSON_Delete(doc);
    unlock(c);
    return r;
}

/* Partial update of limits (one per zone of k) from {"zones": {z: N|null}}.
 * *code is the error code to answer with. */
static int parse_capacity(const config *k, const cJSON *j, int64_t *limits, const char **code,
                          char *err, size_t errsz, const cJSON **bad)
{
    *code = "InvalidRequest";
    const cJSON *zones = NULL;
    if (!cJSON_IsObject(j)) {
        snprintf(err, errsz, "capacity must be an object {\"zones\": {...}}, not %s",
                 json_type_name(j));
        if (bad) *bad = j;
        return -1;
    }
    for (const cJSON *m = j->child; m; m = m->next) {
        if (strcmp(m->string, "zones") != 0) {
            snprintf(err, errsz, "unknown field \"%.64s\": the only field is zones", m->string);
            if (bad) *bad = m;
            return -1;
        }
        zones = m;
    }
    if (!zones || !cJSON_IsObject(zones)) {
        snprintf(err, errsz,
                 "field \"zones\" must be an object of zone → limit (an integer or null)");
        if (bad) *bad = zones ? zones : j;
        return -1;
    }
    for (const cJSON *m = zones->child; m; m = m->next) {
        int zi = zone_index(k, m->string);
        int64_t v = -1;
        if (zi < 0) {
            char list[1024];
            join(k->zones, k->nzones, list, sizeof list);
            *code = "InvalidZone";
            snprintf(err, errsz, "zones.%.64s: unknown zone: the zones are %s", m->string, list);
            if (bad) *bad = m;
            return -1;
        }
        if (!cJSON_IsNull(m) && (!json_int(m, &v) || v < 0 || v > 1000000000)) {
            snprintf(err, errsz,
                     "zones.%s: the limit must be an integer from 0 to 1000000000, or null for "
                     "unlimited",
                     m->string);
            if (bad) *bad = m;
            return -1;
        }
        limits[zi] = v;
    }
    return 0;
}

static cJSON *capacity_json(const mc_cloud *c)
{
    cJSON *o = cJSON_CreateObject(), *zones = cJSON_AddObjectToObject(o, "zones");
    bool okv = zones != NULL;
    for (size_t z = 0; okv && z < c->cfg.nzones; z++) {
        cJSON *e = cJSON_CreateObject();
        if (e) {
            if (c->cfg.limit[z] < 0) {
                if (!cJSON_AddNullToObject(e, "limit")) okv = false;
            } else {
                add_num(e, "limit", (double)c->cfg.limit[z], &okv);
            }
            add_num(e, "used", (double)zone_use(c, c->cfg.zones[z]), &okv);
        }
        add_item(zones, c->cfg.zones[z], e, &okv);
    }
    return finish(o, okv);
}

mc_reply mc_ctl_get_capacity(mc_cloud *c, int64_t now_ms)
{
    lock(c);
    advance(c, now_ms);
    mc_reply r = view_reply(200, capacity_json(c));
    unlock(c);
    return r;
}

mc_reply mc_ctl_set_capacity(mc_cloud *c, const char *body, size_t len)
{
    cJSON *doc = NULL;
    char err[1400];
    const char *code;
    lock(c);
    mc_reply r = parse_body(body, len, false, &doc);
    int64_t *limits = malloc((c->cfg.nzones ? c->cfg.nzones : 1) * sizeof *limits);
    if (!r.status && !limits) r = oom_reply();
    if (!r.status) {
        memcpy(limits, c->cfg.limit, c->cfg.nzones * sizeof *limits);
        if (parse_capacity(&c->cfg, doc, limits, &code, err, sizeof err, NULL) < 0) {
            r = mc_reply_error(400, code, "%s", err);
        } else {
            memcpy(c->cfg.limit, limits, c->cfg.nzones * sizeof *limits);
            r = view_reply(200, capacity_json(c));
        }
    }
    free(limits);
    cJSON_Delete(doc);
    unlock(c);
    return r;
}

/* ---------------------------------------------------------------- configuration */

/* A catalogue list: 1..CATALOGUE_MAX unique names of [A-Za-z0-9._-]. */
static int parse_names(const cJSON *j, const char *field, char ***out, size_t *nout, char *err,
                       size_t errsz, const cJSON **bad)
{
    size_t n = (size_t)cJSON_GetArraySize(j), k = 0;
    if (!cJSON_IsArray(j) || n == 0 || n > CATALOGUE_MAX) {
        snprintf(err, errsz, "%s: must be a list of 1 to %d names", field, CATALOGUE_MAX);
        if (bad) *bad = j;
        return -1;
    }
    char **v = calloc(n, sizeof *v);
    if (!v) {
        snprintf(err, errsz, "%s: out of memory", field);
        return -1;
    }
    for (const cJSON *e = j->child; e; e = e->next, k++) {
        const char *s = cJSON_IsString(e) ? e->valuestring : NULL;
        bool good = s && *s && strlen(s) <= 64;
        for (const char *p = s; good && *p; p++)
            good = isalnum((unsigned char)*p) || *p == '.' || *p == '_' || *p == '-';
        for (size_t d = 0; good && d < k; d++) good = strcmp(v[d], s) != 0;
        if (!good) {
            snprintf(err, errsz,
                     "%s[%zu]: must be a unique name of 1 to 64 letters, digits, '.', '_' or '-'",
                     field, k);
            if (bad) *bad = e;
            goto err;
        }
        if (!(v[k] = strdup(s))) {
            snprintf(err, errsz, "%s: out of memory", field);
            goto err;
        }
    }
    *out = v;
    *nout = n;
    return 0;
err:
    strv_free(v, k);
    return -1;
}

int mc_cloud_configure(mc_cloud *c, const cJSON *cfg, char *err, size_t errsz, const cJSON **bad)
{
    char e2[1400];
    const char *code;
    config k = {0};
    int rc = -1;
    if (bad) *bad = NULL;
    lock(c);
    if (!cJSON_IsObject(cfg)) {
        snprintf(err, errsz,
                 "the cloud section must be a mapping of timings, capacity, zones, images");
        if (bad) *bad = cfg;
        goto out;
    }
    for (const cJSON *m = cfg->child; m; m = m->next) {
        if (strcmp(m->string, "timings") && strcmp(m->string, "capacity") &&
            strcmp(m->string, "zones") && strcmp(m->string, "images")) {
            snprintf(err, errsz,
                     "unknown field \"%.64s\": the fields are timings, capacity, zones, images",
                     m->string);
            if (bad) *bad = m;
            goto out;
        }
    }
    if (config_copy(&k, &c->cfg) < 0) {
        snprintf(err, errsz, "out of memory");
        goto out;
    }
    const cJSON *zones = cJSON_GetObjectItemCaseSensitive(cfg, "zones");
    if (zones) {
        char **v;
        size_t n;
        if (parse_names(zones, "zones", &v, &n, err, errsz, bad) < 0) goto out;
        int64_t *limits = malloc(n * sizeof *limits);
        if (!limits) {
            strv_free(v, n);
            snprintf(err, errsz, "out of memory");
            goto out;
        }
        /* A zone that stays keeps its limit. */
        for (size_t z = 0; z < n; z++) {
            int old = zone_index(&k, v[z]);
            limits[z] = old >= 0 ? k.limit[old] : -1;
        }
        strv_free(k.zones, k.nzones);
        free(k.limit);
        k.zones = v;
        k.nzones = n;
        k.limit = limits;
    }
    const cJSON *images = cJSON_GetObjectItemCaseSensitive(cfg, "images");
    if (images) {
        char **v;
        size_t n;
        if (parse_names(images, "images", &v, &n, err, errsz, bad) < 0) goto out;
        strv_free(k.images, k.nimages);
        k.images = v;
        k.nimages = n;
    }
    const cJSON *cap = cJSON_GetObjectItemCaseSensitive(cfg, "capacity");
    if (cap && parse_capacity(&k, cap, k.limit, &code, e2, sizeof e2, bad) < 0) {
        snprintf(err, errsz, "capacity: %s", e2);
        goto out;
    }
    const cJSON *timings = cJSON_GetObjectItemCaseSensitive(cfg, "timings");
    if (timings && parse_timings(timings, k.timing, e2, sizeof e2, bad) < 0) {
        snprintf(err, errsz, "timings: %s", e2);
        goto out;
    }
    config base;
    if (config_copy(&base, &k) < 0) {
        snprintf(err, errsz, "out of memory");
        goto out;
    }
    config_free(&c->cfg);
    config_free(&c->base);
    c->cfg = k;
    c->base = base;
    k = (config){0};
    rc = 0;
out:
    config_free(&k);
    unlock(c);
    return rc;
}

/* ---------------------------------------------------------------- dump, reset, counts */

static cJSON *pending_json(const char *transition, int64_t due, const op *o)
{
    bool okv = true;
    cJSON *p = cJSON_CreateObject();
    if (!p) return NULL;
    add_str(p, "transition", transition, &okv);
    add_time(p, "dueAt", due, &okv);
    add_str(p, "operation", o->e.id, &okv);
    return finish(p, okv);
}

mc_reply mc_ctl_dump(mc_cloud *c, int64_t now_ms)
{
    lock(c);
    advance(c, now_ms);
    world *w = &c->w;
    bool okv = true;
    cJSON *o = cJSON_CreateObject();
    cJSON *insts = cJSON_CreateArray(), *snaps = cJSON_CreateArray(), *ops = cJSON_CreateArray(),
          *keys = cJSON_CreateArray();
    for (size_t k = 0; insts && k < w->inst.n; k++) {
        const inst *i = w->inst.v[k];
        cJSON *v = inst_view(i, NULL);
        if (v && i->pt != NO_TRANSITION) {
            cJSON *p = pending_json(transition_names[i->pt], i->due_ms, i->op);
            if (p && i->pt == MC_T_RESIZE) {
                cJSON *t = cJSON_AddObjectToObject(p, "target");
                add_num(t, "cpu", i->r_cpu, &okv);
                add_num(t, "memoryMiB", (double)i->r_memory, &okv);
                add_num(t, "diskGiB", i->r_disk, &okv);
            }
            add_item(v, "pending", p, &okv);
        }
        if (!cJSON_AddItemToArray(insts, v)) okv = false;
    }
    for (size_t k = 0; snaps && k < w->snap.n; k++) {
        const snap *s = w->snap.v[k];
        cJSON *v = snap_view(s, NULL);
        if (v && s->state == SNAP_CREATING)
            add_item(v, "pending", pending_json("snapshot", s->due_ms, s->op), &okv);
        if (!cJSON_AddItemToArray(snaps, v)) okv = false;
    }
    for (size_t k = 0; ops && k < w->ops.n; k++)
        if (!cJSON_AddItemToArray(ops, op_view(w->ops.v[k]))) okv = false;
    for (size_t k = 0; keys && k < w->idem.n; k++) {
        const idem *r = w->idem.v[k];
        cJSON *e = cJSON_CreateObject();
        if (e) {
            add_str(e, "key", r->key, &okv);
            add_str(e, "request", r->request, &okv);
            add_str(e, "target", r->target, &okv);
            add_str(e, "operation", r->op_id, &okv);
            add_time(e, "createdAt", r->created_ms, &okv);
            add_time(e, "expiresAt", r->created_ms + MC_IDEMPOTENCY_TTL_MS, &okv);
            if (!cJSON_AddBoolToObject(e, "targetGone", r->last_view != NULL)) okv = false;
        }
        if (!cJSON_AddItemToArray(keys, e)) okv = false;
    }
    if (o) {
        add_item(o, "instances", insts, &okv);
        add_item(o, "snapshots", snaps, &okv);
        add_item(o, "operations", ops, &okv);
        add_item(o, "idempotencyKeys", keys, &okv);
        add_item(o, "timings", timings_json(&c->cfg), &okv);
        cJSON *cap = capacity_json(c);
        add_item(o, "capacity", cap ? cJSON_DetachItemFromObject(cap, "zones") : NULL, &okv);
        cJSON_Delete(cap);
        add_item(o, "zones",
                 cJSON_CreateStringArray((const char *const *)c->cfg.zones, (int)c->cfg.nzones),
                 &okv);
        add_item(o, "images",
                 cJSON_CreateStringArray((const char *const *)c->cfg.images, (int)c->cfg.nimages),
                 &okv);
        cJSON *n = cJSON_AddObjectToObject(o, "counters");
        if (n) {
            add_num(n, "instances", (double)w->n_inst, &okv);
            add_num(n, "snapshots", (double)w->n_snap, &okv);
            add_num(n, "operations", (double)w->n_op, &okv);
            add_num(n, "crashes", (double)w->n_crash, &okv);
        } else {
            okv = false;
        }
    } else {
        cJSON_Delete(insts);
        cJSON_Delete(snaps);
        cJSON_Delete(ops);
        cJSON_Delete(keys);
    }
    mc_reply r = view_reply(200, finish(o, okv));
    unlock(c);
    return r;
}

void mc_cloud_reset(mc_cloud *c)
{
    lock(c);
    config k;
    /* Without memory for a fresh copy the configuration stays as it is;
     * the world is still forgotten. */
    if (config_copy(&k, &c->base) == 0) {
        config_free(&c->cfg);
        c->cfg = k;
    }
    world_free(&c->w);
    c->due = INT64_MAX;
    c->due_exact = true;
    c->gen++;
    unlock(c);
}

void mc_cloud_counts(mc_cloud *c, size_t counts[MC_STATE_COUNT])
{
    lock(c);
    memset(counts, 0, MC_STATE_COUNT * sizeof *counts);
    for (size_t k = 0; k < c->w.inst.n; k++) counts[((const inst *)c->w.inst.v[k])->state]++;
    unlock(c);
}

/* ---------------------------------------------------------------- persistence: save */

static cJSON *inst_save(const inst *i)
{
    bool okv = true;
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    add_str(o, "id", i->e.id, &okv);
    add_num(o, "seq", (double)i->e.seq, &okv);
    add_str(o, "name", i->name, &okv);
    add_str(o, "state", mc_state_name(i->state), &okv);
    add_num(o, "cpu", i->cpu, &okv);
    add_num(o, "memoryMiB", (double)i->memory_mib, &okv);
    add_num(o, "diskGiB", i->disk_gib, &okv);
    add_str(o, "image", i->image, &okv);
    add_str(o, "zone", i->zone, &okv);
    add_str(o, "networkType", net_names[i->net], &okv);
    add_num(o, "ipCount", i->ip_count, &okv);
    cJSON *ips = cJSON_CreateArray();
    for (int k = 0; ips && i->ips && k < i->ip_count; k++) {
        char a[16];
        format_ip(i->ips[k], a);
        if (!cJSON_AddItemToArray(ips, cJSON_CreateString(a))) okv = false;
    }
    add_item(o, "ipAddresses", ips, &okv);
    add_item(o, "tags", cJSON_Duplicate(i->tags, 1), &okv);
    add_num(o, "createdAt", (double)i->created_ms, &okv);
    add_num(o, "updatedAt", (double)i->updated_ms, &okv);
    if (i->idem_key) add_str(o, "idempotencyKey", i->idem_key, &okv);
    add_num(o, "transitions", i->ntrans, &okv);
    if (i->pt != NO_TRANSITION) {
        cJSON *p = cJSON_CreateObject();
        if (p) {
            add_str(p, "transition", transition_names[i->pt], &okv);
            add_num(p, "due", (double)i->due_ms, &okv);
            add_str(p, "operation", i->op->e.id, &okv);
            if (i->pt == MC_T_RESIZE) {
                add_num(p, "cpu", i->r_cpu, &okv);
                add_num(p, "memoryMiB", (double)i->r_memory, &okv);
                add_num(p, "diskGiB", i->r_disk, &okv);
            }
        }
        add_item(o, "pending", p, &okv);
    }
    return finish(o, okv);
}

static cJSON *snap_save(const snap *s)
{
    bool okv = true;
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    add_str(o, "id", s->e.id, &okv);
    add_num(o, "seq", (double)s->e.seq, &okv);
    add_str(o, "instanceId", s->instance_id, &okv);
    add_str(o, "name", s->name, &okv);
    add_str(o, "state", snap_state_names[s->state], &okv);
    add_num(o, "sizeGiB", s->size_gib, &okv);
    add_item(o, "tags", cJSON_Duplicate(s->tags, 1), &okv);
    add_num(o, "createdAt", (double)s->created_ms, &okv);
    if (s->idem_key) add_str(o, "idempotencyKey", s->idem_key, &okv);
    if (s->state == SNAP_CREATING) {
        cJSON *p = cJSON_CreateObject();
        if (p) {
            add_num(p, "due", (double)s->due_ms, &okv);
            add_str(p, "operation", s->op->e.id, &okv);
        }
        add_item(o, "pending", p, &okv);
    }
    return finish(o, okv);
}

static cJSON *op_save(const op *o)
{
    bool okv = true;
    cJSON *j = cJSON_CreateObject();
    if (!j) return NULL;
    add_str(j, "id", o->e.id, &okv);
    add_num(j, "seq", (double)o->e.seq, &okv);
    add_str(j, "type", transition_names[o->type], &okv);
    add_str(j, "target", o->target, &okv);
    add_str(j, "state", op_state_names[o->state], &okv);
    add_num(j, "createdAt", (double)o->created_ms, &okv);
    if (o->state != OP_RUNNING) add_num(j, "doneAt", (double)o->done_ms, &okv);
    if (o->state == OP_FAILED) {
        add_str(j, "errorCode", o->code, &okv);
        add_str(j, "errorMessage", o->message, &okv);
    }
    return finish(j, okv);
}

static cJSON *idem_save(const idem *r)
{
    bool okv = true;
    cJSON *j = cJSON_CreateObject();
    if (!j) return NULL;
    add_str(j, "key", r->key, &okv);
    add_num(j, "seq", (double)r->e.seq, &okv);
    add_str(j, "request", r->request, &okv);
    add_item(j, "body", cJSON_Duplicate(r->body, 1), &okv);
    add_str(j, "kind", idem_kind_names[r->kind], &okv);
    add_str(j, "target", r->target, &okv);
    add_str(j, "operation", r->op_id, &okv);
    add_num(j, "createdAt", (double)r->created_ms, &okv);
    if (r->last_view) add_item(j, "lastView", cJSON_Duplicate(r->last_view, 1), &okv);
    return finish(j, okv);
}

static cJSON *save_list(const pvec *p, cJSON *(*one)(const void *))
{
    cJSON *a = cJSON_CreateArray();
    for (size_t k = 0; a && k < p->n; k++) {
        if (!cJSON_AddItemToArray(a, one(p->v[k]))) {
            cJSON_Delete(a);
            return NULL;
        }
    }
    return a;
}

static cJSON *inst_save_v(const void *p)
{
    return inst_save(p);
}
static cJSON *snap_save_v(const void *p)
{
    return snap_save(p);
}
static cJSON *op_save_v(const void *p)
{
    return op_save(p);
}
static cJSON *idem_save_v(const void *p)
{
    return idem_save(p);
}

static cJSON *state_doc(const mc_cloud *c)
{
    const world *w = &c->w;
    bool okv = true;
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    add_num(o, "format", STATE_FORMAT, &okv);
    cJSON *n = cJSON_CreateObject();
    if (n) {
        add_num(n, "instance", (double)w->n_inst, &okv);
        add_num(n, "snapshot", (double)w->n_snap, &okv);
        add_num(n, "operation", (double)w->n_op, &okv);
        add_num(n, "idempotency", (double)w->n_idem, &okv);
        add_num(n, "crash", (double)w->n_crash, &okv);
    }
    add_item(o, "counters", n, &okv);
    add_item(o, "operations", save_list(&w->ops, op_save_v), &okv);
    add_item(o, "instances", save_list(&w->inst, inst_save_v), &okv);
    add_item(o, "snapshots", save_list(&w->snap, snap_save_v), &okv);
    add_item(o, "idempotency", save_list(&w->idem, idem_save_v), &okv);
    return finish(o, okv);
}

static int errf(char *err, size_t errsz, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int errf(char *err, size_t errsz, const char *fmt, ...)
{
    if (err && errsz) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errsz, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Writes data to path so that a crash at any point leaves either the old
 * file or the new one, never a mix. */
static int write_atomic(const char *path, const char *data, size_t len, char *err, size_t errsz)
{
    char tmp[PATH_MAX], dir[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return errf(err, errsz, "state file path too long: %s", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return errf(err, errsz, "cannot create %s: %s (check the folder exists and is writable)",
                    tmp, strerror(errno));
    size_t off = 0;
    while (off < len) {
        ssize_t k = write(fd, data + off, len - off);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) goto fail;
        off += (size_t)k;
    }
    if (fsync(fd) < 0) goto fail;
    if (close(fd) < 0) {
        fd = -1;
        goto fail;
    }
    fd = -1;
    if (rename(tmp, path) < 0) goto fail;
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) < 0) {
        int e = errno;
        if (dfd >= 0) close(dfd);
        return errf(err, errsz, "cannot sync folder %s of %s: %s", dir, path, strerror(e));
    }
    close(dfd);
    return 0;
fail:;
    int e = errno;
    if (fd >= 0) close(fd);
    unlink(tmp);
    return errf(err, errsz, "cannot write state file %s: %s", path, strerror(e));
}

int mc_cloud_save(mc_cloud *c, const char *path, char *err, size_t errsz)
{
    pthread_mutex_lock(&c->save_mu);
    lock(c);
    cJSON *doc = state_doc(c);
    unlock(c);
    /* Printing and disk I/O happen outside the world lock: requests go on
     * while the file is written. */
    char *text = doc ? cJSON_PrintUnformatted(doc) : NULL;
    cJSON_Delete(doc);
    int rc = text ? write_atomic(path, text, strlen(text), err, errsz)
                  : errf(err, errsz, "cannot save %s: out of memory", path);
    free(text);
    pthread_mutex_unlock(&c->save_mu);
    return rc;
}

/* ---------------------------------------------------------------- persistence: load */

typedef struct lctx {
    char *err;
    size_t errsz;
    char where[64]; /* "instances[3]" */
} lctx;

static int lfail(lctx *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int lfail(lctx *e, const char *fmt, ...)
{
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return errf(e->err, e->errsz, "%s%s%s", e->where, e->where[0] ? ": " : "", msg);
}

/* A string member of at most maxlen bytes (at least 1 when required). */
static int l_str(const cJSON *o, const char *k, bool req, size_t maxlen, const char **out, lctx *e)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, k);
    *out = NULL;
    if (!j && !req) return 0;
    if (!cJSON_IsString(j)) return lfail(e, "\"%s\" must be a string", k);
    size_t n = strlen(j->valuestring);
    if (n > maxlen || (req && n == 0))
        return lfail(e, "\"%s\" must be 1 to %zu characters long", k, maxlen);
    *out = j->valuestring;
    return 0;
}

/* An integer member in [min, max]; absent and optional leaves *out. */
static int l_int(const cJSON *o, const char *k, bool req, int64_t min, int64_t max, int64_t *out,
                 lctx *e)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, k);
    int64_t v;
    if (!j && !req) return 0;
    if (!json_int(j, &v) || v < min || v > max)
        return lfail(e, "\"%s\" must be an integer from %" PRId64 " to %" PRId64, k, min, max);
    *out = v;
    return 0;
}

static int l_id(const cJSON *o, const char *k, char out[ID_LEN], lctx *e)
{
    const char *s;
    if (l_str(o, k, true, ID_LEN - 1, &s, e) < 0) return -1;
    snprintf(out, ID_LEN, "%s", s);
    return 0;
}

static int l_tags(const cJSON *o, cJSON **out, lctx *e)
{
    char msg[300];
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "tags");
    if (!t) return lfail(e, "missing \"tags\"");
    if (!tags_valid(t, "tags", msg, sizeof msg)) return lfail(e, "%s", msg);
    if (!(*out = cJSON_Duplicate(t, 1))) return lfail(e, "out of memory");
    return 0;
}

/* seq must rise through each list, as saves write them. */
static int l_seq(const cJSON *o, uint64_t prev, uint64_t counter, uint64_t *out, lctx *e)
{
    int64_t v = 0;
    if (l_int(o, "seq", true, 1, (int64_t)counter, &v, e) < 0) return -1;
    if ((uint64_t)v <= prev) return lfail(e, "\"seq\" %" PRId64 " is out of order", v);
    *out = (uint64_t)v;
    return 0;
}

/* Resolves a pending transition's operation: running, not yet claimed. */
static op *l_pending_op(const world *w, const cJSON *p, mc_transition t, const char *target,
                        lctx *e)
{
    const char *id;
    if (l_str(p, "operation", true, ID_LEN - 1, &id, e) < 0) return NULL;
    op *o = smap_get(&w->op_ix, id);
    if (!o || o->state != OP_RUNNING || o->claimed || o->type != t || strcmp(o->target, target)) {
        lfail(e, "pending operation %s is not a running %s operation of %s", id,
              transition_names[t], target);
        return NULL;
    }
    o->claimed = true;
    return o;
}

static int load_op(world *w, const cJSON *j, lctx *e)
{
    const char *s;
    op *o = calloc(1, sizeof *o);
    if (!o) return lfail(e, "out of memory");
    uint64_t prev = w->ops.n ? ((ent *)w->ops.v[w->ops.n - 1])->seq : 0;
    if (!cJSON_IsObject(j)) goto bad_obj;
    if (l_id(j, "id", o->e.id, e) < 0 || l_seq(j, prev, w->n_op, &o->e.seq, e) < 0) goto err;
    if (smap_get(&w->op_ix, o->e.id)) {
        lfail(e, "duplicate operation id %s", o->e.id);
        goto err;
    }
    if (l_str(j, "type", true, 16, &s, e) < 0) goto err;
    int t = transition_parse(s);
    if (t < 0) {
        lfail(e, "unknown operation type \"%.32s\"", s);
        goto err;
    }
    o->type = (mc_transition)t;
    if (l_id(j, "target", o->target, e) < 0) goto err;
    if (l_str(j, "state", true, 16, &s, e) < 0) goto err;
    int st = name_index(op_state_names, 3, s);
    if (st < 0) {
        lfail(e, "unknown operation state \"%.32s\"", s);
        goto err;
    }
    o->state = (op_state)st;
    if (l_int(j, "createdAt", true, INT64_MIN / 2, INT64_MAX / 2, &o->created_ms, e) < 0 ||
        l_int(j, "doneAt", o->state != OP_RUNNING, INT64_MIN / 2, INT64_MAX, &o->done_ms, e) < 0)
        goto err;
    if (o->state == OP_FAILED) {
        const char *code, *msg;
        if (l_str(j, "errorCode", true, sizeof o->code - 1, &code, e) < 0 ||
            l_str(j, "errorMessage", false, sizeof o->message - 1, &msg, e) < 0)
            goto err;
        snprintf(o->code, sizeof o->code, "%s", code);
        snprintf(o->message, sizeof o->message, "%s", msg ? msg : "");
    }
    if (!pvec_push(&w->ops, o)) goto oom;
    if (!smap_put(&w->op_ix, o->e.id, o)) {
        w->ops.n--;
        goto oom;
    }
    return 0;
bad_obj:
    lfail(e, "must be an object");
    goto err;
oom:
    lfail(e, "out of memory");
err:
    op_free(o);
    return -1;
}

static int load_inst(world *w, const cJSON *j, lctx *e)
{
    const char *s;
    int64_t v;
    inst *i = calloc(1, sizeof *i);
    if (!i) return lfail(e, "out of memory");
    i->pt = NO_TRANSITION;
    i->due_ms = INT64_MAX;
    uint64_t prev = w->inst.n ? ((ent *)w->inst.v[w->inst.n - 1])->seq : 0;
    if (!cJSON_IsObject(j)) {
        lfail(e, "must be an object");
        goto err;
    }
    if (l_id(j, "id", i->e.id, e) < 0 || l_seq(j, prev, w->n_inst, &i->e.seq, e) < 0) goto err;
    if (smap_get(&w->inst_ix, i->e.id)) {
        lfail(e, "duplicate instance id %s", i->e.id);
        goto err;
    }
    if (l_str(j, "name", true, TEXT_MAX, &s, e) < 0 || !(i->name = strdup(s))) goto err_oom;
    if (l_str(j, "image", true, TEXT_MAX, &s, e) < 0 || !(i->image = strdup(s))) goto err_oom;
    if (l_str(j, "zone", true, TEXT_MAX, &s, e) < 0 || !(i->zone = strdup(s))) goto err_oom;
    if (l_str(j, "state", true, 16, &s, e) < 0) goto err;
    if (mc_state_parse(s, &i->state) < 0) {
        lfail(e, "unknown state \"%.32s\"", s);
        goto err;
    }
    if (l_int(j, "cpu", true, 1, 128, &v, e) < 0) goto err;
    i->cpu = (int)v;
    if (l_int(j, "memoryMiB", true, 256, MEMORY_MAX_MIB, &i->memory_mib, e) < 0) goto err;
    if (l_int(j, "diskGiB", true, 10, 65536, &v, e) < 0) goto err;
    i->disk_gib = (int)v;
    if (l_str(j, "networkType", true, 16, &s, e) < 0) goto err;
    if ((i->net = name_index(net_names, NET_COUNT, s)) < 0) {
        lfail(e, "unknown networkType \"%.32s\"", s);
        goto err;
    }
    if (l_int(j, "ipCount", true, 1, 256, &v, e) < 0) goto err;
    i->ip_count = (int)v;
    const cJSON *ips = cJSON_GetObjectItemCaseSensitive(j, "ipAddresses");
    int nips = cJSON_GetArraySize(ips);
    if (!cJSON_IsArray(ips) || (nips != 0 && nips != i->ip_count)) {
        lfail(e, "\"ipAddresses\" must be a list of none or ipCount addresses");
        goto err;
    }
    if (nips) {
        if (!(i->ips = calloc((size_t)nips, sizeof *i->ips))) goto err_oom;
        int k = 0;
        for (const cJSON *a = ips->child; a; a = a->next, k++) {
            struct in_addr in;
            if (!cJSON_IsString(a) || inet_pton(AF_INET, a->valuestring, &in) != 1) {
                lfail(e, "ipAddresses[%d] is not an IPv4 address", k);
                goto err;
            }
            i->ips[k] = ntohl(in.s_addr);
        }
    }
    if (l_tags(j, &i->tags, e) < 0) goto err;
    if (l_int(j, "createdAt", true, INT64_MIN / 2, INT64_MAX / 2, &i->created_ms, e) < 0 ||
        l_int(j, "updatedAt", true, INT64_MIN / 2, INT64_MAX / 2, &i->updated_ms, e) < 0)
        goto err;
    if (l_str(j, "idempotencyKey", false, IDEM_KEY_MAX, &s, e) < 0) goto err;
    if (s && !(i->idem_key = strdup(s))) goto err_oom;
    v = 0;
    if (l_int(j, "transitions", true, 0, UINT32_MAX, &v, e) < 0) goto err;
    i->ntrans = (uint32_t)v;
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "pending");
    bool busy = i->state != MC_RUNNING && i->state != MC_STOPPED && i->state != MC_CRASHED;
    if (!p != !busy) {
        lfail(e, "state %s %s a \"pending\" transition", mc_state_name(i->state),
              busy ? "needs" : "cannot have");
        goto err;
    }
    if (p) {
        if (l_str(p, "transition", true, 16, &s, e) < 0) goto err;
        int t = transition_parse(s);
        if (t < 0 || t == MC_T_SNAPSHOT || transition_state[t] != i->state) {
            lfail(e, "pending transition \"%.32s\" does not fit state %s", s,
                  mc_state_name(i->state));
            goto err;
        }
        i->pt = t;
        if (l_int(p, "due", true, INT64_MIN / 2, INT64_MAX, &i->due_ms, e) < 0) goto err;
        if (!(i->op = l_pending_op(w, p, (mc_transition)t, i->e.id, e))) goto err;
        if (t == MC_T_RESIZE) {
            if (l_int(p, "cpu", true, 1, 128, &v, e) < 0) goto err;
            i->r_cpu = (int)v;
            if (l_int(p, "memoryMiB", true, 256, MEMORY_MAX_MIB, &i->r_memory, e) < 0) goto err;
            if (l_int(p, "diskGiB", true, 10, 65536, &v, e) < 0) goto err;
            i->r_disk = (int)v;
        }
    }
    if (!pvec_push(&w->inst, i)) goto err_oom;
    if (!smap_put(&w->inst_ix, i->e.id, i)) {
        w->inst.n--;
        goto err_oom;
    }
    return 0;
err_oom:
    /* Reached also when a getter failed: it has written err already. */
    if (e->err && !e->err[0]) lfail(e, "out of memory");
err:
    inst_free(i);
    return -1;
}

static int load_snap(world *w, const cJSON *j, lctx *e)
{
    const char *s;
    int64_t v;
    snap *sn = calloc(1, sizeof *sn);
    if (!sn) return lfail(e, "out of memory");
    sn->due_ms = INT64_MAX;
    uint64_t prev = w->snap.n ? ((ent *)w->snap.v[w->snap.n - 1])->seq : 0;
    if (!cJSON_IsObject(j)) {
        lfail(e, "must be an object");
        goto err;
    }
    if (l_id(j, "id", sn->e.id, e) < 0 || l_seq(j, prev, w->n_snap, &sn->e.seq, e) < 0 ||
        l_id(j, "instanceId", sn->instance_id, e) < 0)
        goto err;
    if (smap_get(&w->snap_ix, sn->e.id)) {
        lfail(e, "duplicate snapshot id %s", sn->e.id);
        goto err;
    }
    if (l_str(j, "name", true, TEXT_MAX, &s, e) < 0 || !(sn->name = strdup(s))) goto err_oom;
    if (l_str(j, "state", true, 16, &s, e) < 0) goto err;
    int st = name_index(snap_state_names, 2, s);
    if (st < 0) {
        lfail(e, "unknown snapshot state \"%.32s\"", s);
        goto err;
    }
    sn->state = (snap_state)st;
    if (l_int(j, "sizeGiB", true, 10, 65536, &v, e) < 0) goto err;
    sn->size_gib = (int)v;
    if (l_tags(j, &sn->tags, e) < 0) goto err;
    if (l_int(j, "createdAt", true, INT64_MIN / 2, INT64_MAX / 2, &sn->created_ms, e) < 0) goto err;
    if (l_str(j, "idempotencyKey", false, IDEM_KEY_MAX, &s, e) < 0) goto err;
    if (s && !(sn->idem_key = strdup(s))) goto err_oom;
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "pending");
    if (!p != (sn->state != SNAP_CREATING)) {
        lfail(e, "a snapshot has a \"pending\" transition exactly while creating");
        goto err;
    }
    if (p) {
        if (l_int(p, "due", true, INT64_MIN / 2, INT64_MAX, &sn->due_ms, e) < 0) goto err;
        if (!(sn->op = l_pending_op(w, p, MC_T_SNAPSHOT, sn->e.id, e))) goto err;
    }
    if (!pvec_push(&w->snap, sn)) goto err_oom;
    if (!smap_put(&w->snap_ix, sn->e.id, sn)) {
        w->snap.n--;
        goto err_oom;
    }
    return 0;
err_oom:
    if (e->err && !e->err[0]) lfail(e, "out of memory");
err:
    snap_free(sn);
    return -1;
}

static int load_idem(world *w, const cJSON *j, lctx *e)
{
    const char *s;
    idem *r = calloc(1, sizeof *r);
    if (!r) return lfail(e, "out of memory");
    uint64_t prev = w->idem.n ? ((ent *)w->idem.v[w->idem.n - 1])->seq : 0;
    if (!cJSON_IsObject(j)) {
        lfail(e, "must be an object");
        goto err;
    }
    if (l_seq(j, prev, w->n_idem, &r->e.seq, e) < 0) goto err;
    if (l_str(j, "key", true, IDEM_KEY_MAX, &s, e) < 0 || !(r->key = strdup(s))) goto err_oom;
    if (smap_get(&w->idem_ix, r->key)) {
        lfail(e, "duplicate idempotency key \"%.64s\"", r->key);
        goto err;
    }
    if (l_str(j, "request", true, 256, &s, e) < 0 || !(r->request = strdup(s))) goto err_oom;
    const cJSON *body = cJSON_GetObjectItemCaseSensitive(j, "body");
    if (!cJSON_IsObject(body)) {
        lfail(e, "\"body\" must be an object");
        goto err;
    }
    if (!(r->body = cJSON_Duplicate(body, 1))) goto err_oom;
    if (l_str(j, "kind", true, 16, &s, e) < 0) goto err;
    int kind = name_index(idem_kind_names, 2, s);
    if (kind < 0) {
        lfail(e, "unknown kind \"%.32s\"", s);
        goto err;
    }
    r->kind = (idem_kind)kind;
    if (l_id(j, "target", r->target, e) < 0 || l_id(j, "operation", r->op_id, e) < 0) goto err;
    if (l_int(j, "createdAt", true, INT64_MIN / 2, INT64_MAX / 2, &r->created_ms, e) < 0) goto err;
    const cJSON *lv = cJSON_GetObjectItemCaseSensitive(j, "lastView");
    if (lv && !cJSON_IsObject(lv)) {
        lfail(e, "\"lastView\" must be an object");
        goto err;
    }
    if (lv && !(r->last_view = cJSON_Duplicate(lv, 1))) goto err_oom;
    if (!pvec_push(&w->idem, r)) goto err_oom;
    if (!smap_put(&w->idem_ix, r->key, r)) {
        w->idem.n--;
        goto err_oom;
    }
    return 0;
err_oom:
    if (e->err && !e->err[0]) lfail(e, "out of memory");
err:
    idem_free(r);
    return -1;
}

static int load_list(world *w, const cJSON *doc, const char *name,
                     int (*one)(world *, const cJSON *, lctx *), lctx *e)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(doc, name);
    if (!cJSON_IsArray(a)) return lfail(e, "\"%s\" must be a list", name);
    size_t k = 0;
    for (const cJSON *j = a->child; j; j = j->next, k++) {
        snprintf(e->where, sizeof e->where, "%s[%zu]", name, k);
        if (one(w, j, e) < 0) return -1;
    }
    e->where[0] = '\0';
    return 0;
}

/* Builds a world from a state document; validates everything. */
static int load_world(world *w, const cJSON *doc, lctx *e)
{
    int64_t v = 0;
    if (!cJSON_IsObject(doc)) return lfail(e, "the state file must hold a JSON object");
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(doc, "format");
    if (!json_int(f, &v) || v != STATE_FORMAT)
        return lfail(e, "unsupported \"format\" (this mockcloud reads format %d)", STATE_FORMAT);
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(doc, "counters");
    if (!cJSON_IsObject(n)) return lfail(e, "\"counters\" must be an object");
    snprintf(e->where, sizeof e->where, "counters");
    static const int64_t cmax = (int64_t)1 << 40;
    if (l_int(n, "instance", true, 0, cmax, &v, e) < 0) return -1;
    w->n_inst = (uint64_t)v;
    if (l_int(n, "snapshot", true, 0, cmax, &v, e) < 0) return -1;
    w->n_snap = (uint64_t)v;
    if (l_int(n, "operation", true, 0, cmax, &v, e) < 0) return -1;
    w->n_op = (uint64_t)v;
    if (l_int(n, "idempotency", true, 0, cmax, &v, e) < 0) return -1;
    w->n_idem = (uint64_t)v;
    if (l_int(n, "crash", true, 0, cmax, &v, e) < 0) return -1;
    w->n_crash = (uint64_t)v;
    e->where[0] = '\0';
    if (load_list(w, doc, "operations", load_op, e) < 0 ||
        load_list(w, doc, "instances", load_inst, e) < 0 ||
        load_list(w, doc, "snapshots", load_snap, e) < 0 ||
        load_list(w, doc, "idempotency", load_idem, e) < 0)
        return -1;
    for (size_t k = 0; k < w->ops.n; k++) {
        op *o = w->ops.v[k];
        if (o->state == OP_RUNNING && !o->claimed)
            return lfail(e, "operation %s is running but no transition refers to it", o->e.id);
        o->claimed = false;
    }
    return 0;
}

/* Reads a whole file; 1 when it does not exist. */
static int read_file(const char *path, char **out, size_t *len, char *err, size_t errsz)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return 1;
        return errf(err, errsz, "cannot open state file %s: %s", path, strerror(errno));
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > STATE_FILE_MAX) {
        close(fd);
        return errf(err, errsz, "state file %s is not a regular file of at most 1 GiB", path);
    }
    size_t cap = (size_t)st.st_size + 1, n = 0;
    char *buf = malloc(cap);
    if (!buf) {
        close(fd);
        return errf(err, errsz, "cannot read state file %s: out of memory", path);
    }
    for (;;) {
        ssize_t k = read(fd, buf + n, cap - 1 - n);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) {
            int e = errno;
            free(buf);
            close(fd);
            return errf(err, errsz, "cannot read state file %s: %s", path, strerror(e));
        }
        if (k == 0 || n + (size_t)k == cap - 1) {
            n += (size_t)k;
            break;
        }
        n += (size_t)k;
    }
    close(fd);
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

int mc_cloud_load(mc_cloud *c, const char *path, char *err, size_t errsz)
{
    char *text = NULL, lerr[400] = "";
    size_t len = 0;
    world w = {0};
    int rc = read_file(path, &text, &len, err, errsz);
    if (rc != 0) return rc > 0 ? 0 : -1;
    const char *end = NULL;
    cJSON *doc = len ? cJSON_ParseWithLengthOpts(text, len, &end, 0) : NULL;
    if (!doc) {
        rc = len ? errf(err, errsz,
                        "state file %s: malformed JSON at byte %zu (a truncated or foreign file?); "
                        "move it aside to start empty",
                        path, end ? (size_t)(end - text) : (size_t)0)
                 : errf(err, errsz, "state file %s is empty; move it aside to start empty", path);
        goto out;
    }
    lctx e = {lerr, sizeof lerr, ""};
    if (load_world(&w, doc, &e) < 0) {
        rc = errf(err, errsz, "state file %s: %s", path, lerr);
        goto out;
    }
    lock(c);
    /* Counters never go back, so ids issued before the load stay unique. */
    if (c->w.n_inst > w.n_inst) w.n_inst = c->w.n_inst;
    if (c->w.n_snap > w.n_snap) w.n_snap = c->w.n_snap;
    if (c->w.n_op > w.n_op) w.n_op = c->w.n_op;
    if (c->w.n_idem > w.n_idem) w.n_idem = c->w.n_idem;
    if (c->w.n_crash > w.n_crash) w.n_crash = c->w.n_crash;
    world old = c->w;
    c->w = w;
    w = old;
    recompute_due(c);
    c->gen++;
    unlock(c);
    rc = 0;
out:
    world_free(&w);
    cJSON_Delete(doc);
    free(text);
    return rc;
}
