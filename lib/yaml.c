/* yaml.c — YAML streams into cJSON trees with source positions (see
 * csl/yaml.h).
 *
 * Design idea: the trees are plain cJSON, and where each node came from
 * lives beside them in a hash table keyed by the node's address (open
 * addressing, linear probing, backward-shift deletion). A node leaves the
 * table before it is freed, so a recycled address can never inherit a stale
 * position. The builder is a recursive descent over libyaml's events; alias
 * copies are charged against a fixed budget so that "billion laughs" input
 * fails fast instead of eating the machine. */
#include "csl/yaml.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <yaml.h>

/* Nodes that alias expansion (and merging) may copy, per load. */
#define MAX_COPIED_NODES 1000000
/* Deepest nesting of collections, aliases included. */
#define MAX_DEPTH 512
/* Largest file csl_yaml_load_file reads. */
#define MAX_FILE_SIZE (64 << 20)

/* ---------------------------------------------------------------- positions */

typedef struct pos_entry {
    const cJSON *node; /* NULL: empty slot */
    int line, col;     /* where the value starts */
    int kline, kcol;   /* where its key starts; 0 when it has none */
} pos_entry;

typedef struct pos_table {
    pos_entry *slots;
    size_t cap; /* a power of two, or 0 */
    size_t used;
} pos_table;

static size_t pos_hash(const cJSON *node, size_t cap)
{
    uint64_t h = (uint64_t)(uintptr_t)node;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return (size_t)h & (cap - 1);
}

static pos_entry *pos_find(const pos_table *t, const cJSON *node)
{
    if (!t->cap || !node) return NULL;
    for (size_t i = pos_hash(node, t->cap);; i = (i + 1) & (t->cap - 1)) {
        if (t->slots[i].node == node) return &t->slots[i];
        if (!t->slots[i].node) return NULL;
    }
}

static bool pos_grow(pos_table *t)
{
    size_t cap = t->cap ? t->cap * 2 : 256;
    pos_entry *slots = calloc(cap, sizeof *slots);
    if (!slots) return false;
    for (size_t i = 0; i < t->cap; i++) {
        if (!t->slots[i].node) continue;
        size_t j = pos_hash(t->slots[i].node, cap);
        while (slots[j].node) j = (j + 1) & (cap - 1);
        slots[j] = t->slots[i];
    }
    free(t->slots);
    t->slots = slots;
    t->cap = cap;
    return true;
}

/* Returns the node's entry, creating an empty one; NULL when out of memory. */
static pos_entry *pos_put(pos_table *t, const cJSON *node)
{
    pos_entry *e = pos_find(t, node);
    if (e) return e;
    if ((t->used + 1) * 4 > t->cap * 3 && !pos_grow(t)) return NULL;
    size_t i = pos_hash(node, t->cap);
    while (t->slots[i].node) i = (i + 1) & (t->cap - 1);
    t->slots[i] = (pos_entry){node, 0, 0, 0, 0};
    t->used++;
    return &t->slots[i];
}

/* Backward-shift deletion keeps every probe chain unbroken without
 * tombstones. */
static void pos_remove(pos_table *t, const cJSON *node)
{
    pos_entry *e = pos_find(t, node);
    if (!e) return;
    size_t mask = t->cap - 1, hole = (size_t)(e - t->slots);
    for (size_t i = (hole + 1) & mask; t->slots[i].node; i = (i + 1) & mask) {
        size_t home = pos_hash(t->slots[i].node, t->cap);
        /* The entry at i may fill the hole when its home is not in (hole, i]. */
        bool between = hole <= i ? (home > hole && home <= i) : (home > hole || home <= i);
        if (!between) {
            t->slots[hole] = t->slots[i];
            hole = i;
        }
    }
    t->slots[hole].node = NULL;
    t->used--;
}

/* ---------------------------------------------------------------- the handle */

struct csl_yaml {
    char *name;
    cJSON **docs;
    size_t ndocs, cap;
    pos_table pos;
};

/* Drops node and its subtree from the table (before it is freed or given
 * away). */
static void forget_tree(csl_yaml *y, const cJSON *node)
{
    for (; node; node = node->next) {
        pos_remove(&y->pos, node);
        forget_tree(y, node->child);
    }
}

static void forget_one_tree(csl_yaml *y, const cJSON *node)
{
    if (!node) return;
    pos_remove(&y->pos, node);
    forget_tree(y, node->child);
}

void csl_yaml_free(csl_yaml *y)
{
    if (!y) return;
    for (size_t i = 0; i < y->ndocs; i++) cJSON_Delete(y->docs[i]);
    free(y->docs);
    free(y->pos.slots);
    free(y->name);
    free(y);
}

const char *csl_yaml_name(const csl_yaml *y)
{
    return y->name;
}

size_t csl_yaml_count(const csl_yaml *y)
{
    return y->ndocs;
}

cJSON *csl_yaml_doc(const csl_yaml *y, size_t i)
{
    return i < y->ndocs ? y->docs[i] : NULL;
}

cJSON *csl_yaml_take_doc(csl_yaml *y, size_t i)
{
    if (i >= y->ndocs || !y->docs[i]) return NULL;
    cJSON *doc = y->docs[i];
    forget_one_tree(y, doc);
    /* The slot stays (as NULL) so later documents keep their indices. */
    y->docs[i] = NULL;
    return doc;
}

bool csl_yaml_pos(const csl_yaml *y, const cJSON *node, int *line, int *col)
{
    const pos_entry *e = y ? pos_find(&y->pos, node) : NULL;
    if (!e) return false;
    if (line) *line = e->line;
    if (col) *col = e->col;
    return true;
}

bool csl_yaml_key_pos(const csl_yaml *y, const cJSON *node, int *line, int *col)
{
    const pos_entry *e = y ? pos_find(&y->pos, node) : NULL;
    if (!e || !e->kline) return false;
    if (line) *line = e->kline;
    if (col) *col = e->kcol;
    return true;
}

static void err_vset(csl_yaml_err *err, const char *file, int line, int col, const char *fmt,
                     va_list ap)
{
    if (!err) return;
    snprintf(err->file, sizeof err->file, "%s", file ? file : "");
    err->line = line;
    err->col = col;
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
}

static void err_set(csl_yaml_err *err, const char *file, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void err_set(csl_yaml_err *err, const char *file, int line, int col, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    err_vset(err, file, line, col, fmt, ap);
    va_end(ap);
}

void csl_yaml_errorf(const csl_yaml *y, const cJSON *node, csl_yaml_err *err, const char *fmt, ...)
{
    int line = 0, col = 0;
    if (!csl_yaml_pos(y, node, &line, &col)) line = col = 0;
    va_list ap;
    va_start(ap, fmt);
    err_vset(err, y ? y->name : "", line, col, fmt, ap);
    va_end(ap);
}

void csl_yaml_err_format(const csl_yaml_err *err, char *out, size_t outsz)
{
    if (!out || !outsz) return;
    if (err->line > 0)
        snprintf(out, outsz, "%s:%d:%d: %s", err->file, err->line, err->col, err->msg);
    else
        snprintf(out, outsz, "%s: %s", err->file, err->msg);
}

/* ---------------------------------------------------------------- scalars */

static bool all_of(const char *s, const char *set)
{
    if (!*s) return false;
    for (; *s; s++)
        if (!strchr(set, *s)) return false;
    return true;
}

/* [-+]?[0-9]+ */
static bool is_decimal_int(const char *s)
{
    if (*s == '-' || *s == '+') s++;
    return all_of(s, "0123456789");
}

/* [-+]? ( \.[0-9]+ | [0-9]+ ( \.[0-9]* )? ) ( [eE] [-+]? [0-9]+ )? */
static bool is_float(const char *s)
{
    if (*s == '-' || *s == '+') s++;
    size_t int_digits = strspn(s, "0123456789");
    s += int_digits;
    size_t frac_digits = 0;
    if (*s == '.') {
        s++;
        frac_digits = strspn(s, "0123456789");
        s += frac_digits;
    }
    if (!int_digits && !frac_digits) return false;
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '-' || *s == '+') s++;
        size_t exp_digits = strspn(s, "0123456789");
        if (!exp_digits) return false;
        s += exp_digits;
    }
    return *s == '\0';
}

static bool one_of(const char *s, const char *const *words)
{
    for (; *words; words++)
        if (strcmp(s, *words) == 0) return true;
    return false;
}

/* The YAML 1.2 core schema's reading of a plain scalar. */
static cJSON *typed_scalar(const char *s)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL", NULL};
    static const char *const pinf[] = {".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", NULL};
    static const char *const ninf[] = {"-.inf", "-.Inf", "-.INF", NULL};
    static const char *const nans[] = {".nan", ".NaN", ".NAN", NULL};
    if (one_of(s, nulls)) return cJSON_CreateNull();
    if (strcasecmp(s, "true") == 0) return cJSON_CreateTrue();
    if (strcasecmp(s, "false") == 0) return cJSON_CreateFalse();
    if (s[0] == '0' && s[1] == 'x' && all_of(s + 2, "0123456789abcdefABCDEF"))
        return cJSON_CreateNumber((double)strtoull(s + 2, NULL, 16));
    if (s[0] == '0' && s[1] == 'o' && all_of(s + 2, "01234567"))
        return cJSON_CreateNumber((double)strtoull(s + 2, NULL, 8));
    if (is_decimal_int(s) || is_float(s)) return cJSON_CreateNumber(strtod(s, NULL));
    if (one_of(s, pinf)) return cJSON_CreateNumber(INFINITY);
    if (one_of(s, ninf)) return cJSON_CreateNumber(-INFINITY);
    if (one_of(s, nans)) return cJSON_CreateNumber(NAN);
    return cJSON_CreateString(s);
}

/* ---------------------------------------------------------------- the loader */

typedef struct anchor {
    char *name;
    const cJSON *node;
    size_t count; /* nodes in its subtree */
    int height;   /* levels of nesting in its subtree */
} anchor;

typedef struct loader {
    yaml_parser_t parser;
    yaml_event_t ev;
    bool have_ev; /* ev holds an event not yet deleted */
    csl_yaml *y;
    csl_yaml_err *err;
    const char *text;
    size_t len;
    anchor *anchors;
    size_t nanchors, cap_anchors;
    /* Merge sources are kept until the document ends: an anchor may still
     * point into them. */
    cJSON *graveyard;
    size_t copied;
} loader;

/* What a parsed node adds up to, for anchors and budgets. */
typedef struct shape {
    size_t count;
    int height;
} shape;

static int fail_at(loader *L, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail_at(loader *L, int line, int col, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    err_vset(L->err, L->y->name, line, col, fmt, ap);
    va_end(ap);
    return -1;
}

static int fail_mark(loader *L, yaml_mark_t m, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail_mark(loader *L, yaml_mark_t m, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    err_vset(L->err, L->y->name, (int)m.line + 1, (int)m.column + 1, fmt, ap);
    va_end(ap);
    return -1;
}

static int fail_oom(loader *L)
{
    return fail_at(L, 0, 0, "out of memory");
}

/* Line and column (1-based) of a byte offset, for reader errors, which
 * carry no mark. */
static void offset_pos(const loader *L, size_t off, int *line, int *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off && i < L->len; i++) {
        if (L->text[i] == '\n') {
            (*line)++;
            *col = 1;
        } else if (((unsigned char)L->text[i] & 0xc0) != 0x80) {
            (*col)++;
        }
    }
}

static int parser_error(loader *L)
{
    yaml_parser_t *p = &L->parser;
    const char *problem = p->problem ? p->problem : "malformed YAML";
    int line, col;
    if (p->error == YAML_MEMORY_ERROR) return fail_oom(L);
    if (p->error == YAML_READER_ERROR) {
        offset_pos(L, p->problem_offset, &line, &col);
        if (p->problem_value != -1)
            return fail_at(L, line, col, "%s (byte 0x%02x): the file must be UTF-8 text", problem,
                           (unsigned)p->problem_value);
        return fail_at(L, line, col, "%s: the file must be UTF-8 text", problem);
    }
    line = (int)p->problem_mark.line + 1;
    col = (int)p->problem_mark.column + 1;
    const char *hint = "";
    size_t at = p->problem_mark.index;
    if (at < L->len && L->text[at] == '\t' && strstr(problem, "cannot start any token"))
        hint = "; tabs cannot indent YAML, use spaces";
    else if (strstr(problem, "mapping values are not allowed"))
        hint = "; check the indentation, or quote a value that contains \": \"";
    if (p->context)
        return fail_at(L, line, col, "%s (%s at line %d, column %d)%s", problem, p->context,
                       (int)p->context_mark.line + 1, (int)p->context_mark.column + 1, hint);
    return fail_at(L, line, col, "%s%s", problem, hint);
}

/* Moves to the next event, freeing the current one. */
static int next_event(loader *L)
{
    if (L->have_ev) yaml_event_delete(&L->ev);
    L->have_ev = false;
    if (!yaml_parser_parse(&L->parser, &L->ev)) return parser_error(L);
    L->have_ev = true;
    return 0;
}

static int set_pos(loader *L, const cJSON *node, yaml_mark_t m)
{
    pos_entry *e = pos_put(&L->y->pos, node);
    if (!e) return fail_oom(L);
    e->line = (int)m.line + 1;
    e->col = (int)m.column + 1;
    return 0;
}

static int set_key_pos(loader *L, const cJSON *node, int line, int col)
{
    pos_entry *e = pos_put(&L->y->pos, node);
    if (!e) return fail_oom(L);
    e->kline = line;
    e->kcol = col;
    return 0;
}

static const anchor *find_anchor(const loader *L, const char *name)
{
    /* The latest definition wins: YAML lets an anchor be redefined. */
    for (size_t i = L->nanchors; i-- > 0;)
        if (strcmp(L->anchors[i].name, name) == 0) return &L->anchors[i];
    return NULL;
}

static int add_anchor(loader *L, const char *name, const cJSON *node, shape sh)
{
    if (L->nanchors == L->cap_anchors) {
        size_t cap = L->cap_anchors ? L->cap_anchors * 2 : 16;
        anchor *a = realloc(L->anchors, cap * sizeof *a);
        if (!a) return fail_oom(L);
        L->anchors = a;
        L->cap_anchors = cap;
    }
    char *copy = strdup(name);
    if (!copy) return fail_oom(L);
    L->anchors[L->nanchors++] = (anchor){copy, node, sh.count, sh.height};
    return 0;
}

static void clear_anchors(loader *L)
{
    for (size_t i = 0; i < L->nanchors; i++) free(L->anchors[i].name);
    L->nanchors = 0;
}

/* Charges n copied nodes against the budget. */
static int charge_copies(loader *L, size_t n, yaml_mark_t m)
{
    if (n > MAX_COPIED_NODES - L->copied)
        return fail_mark(L, m,
                         "aliases expand to more than %d nodes; this looks like a "
                         "\"billion laughs\" document: reduce the aliases",
                         MAX_COPIED_NODES);
    L->copied += n;
    return 0;
}

/* Deep copy that carries positions over from the original. Returns NULL when
 * out of memory (the error is not set here). */
static cJSON *copy_tree(loader *L, const cJSON *src)
{
    cJSON *dst;
    /* Fresh nodes rather than cJSON_Duplicate, which would keep the
     * original's member name on a copy that may land in a sequence. */
    if (cJSON_IsObject(src))
        dst = cJSON_CreateObject();
    else if (cJSON_IsArray(src))
        dst = cJSON_CreateArray();
    else if (cJSON_IsString(src))
        dst = cJSON_CreateString(src->valuestring);
    else if (cJSON_IsNumber(src))
        dst = cJSON_CreateNumber(src->valuedouble);
    else if (cJSON_IsBool(src))
        dst = cJSON_CreateBool(cJSON_IsTrue(src));
    else
        dst = cJSON_CreateNull();
    if (!dst) return NULL;
    const pos_entry *orig = pos_find(&L->y->pos, src);
    if (orig) {
        pos_entry saved = *orig; /* pos_put may move the table */
        pos_entry *e = pos_put(&L->y->pos, dst);
        if (!e) goto err;
        e->line = saved.line;
        e->col = saved.col;
        e->kline = saved.kline;
        e->kcol = saved.kcol;
    }
    for (const cJSON *c = src->child; c && (cJSON_IsObject(src) || cJSON_IsArray(src));
         c = c->next) {
        cJSON *cc = copy_tree(L, c);
        if (!cc) goto err;
        bool added = cJSON_IsObject(src) ? cJSON_AddItemToObject(dst, c->string, cc)
                                         : cJSON_AddItemToArray(dst, cc);
        if (!added) {
            cJSON_Delete(cc);
            goto err;
        }
    }
    return dst;
err:
    cJSON_Delete(dst);
    return NULL;
}

static int parse_node(loader *L, int depth, cJSON **out, shape *sh);

static int parse_scalar(loader *L, cJSON **out, shape *sh)
{
    yaml_event_t *ev = &L->ev;
    const char *value = (const char *)ev->data.scalar.value;
    const char *tag = (const char *)ev->data.scalar.tag;
    bool plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    if (strlen(value) != ev->data.scalar.length)
        return fail_mark(L, ev->start_mark, "strings cannot contain NUL characters");
    cJSON *node;
    if (tag && strcmp(tag, YAML_STR_TAG) == 0)
        node = cJSON_CreateString(value);
    else if (tag && strcmp(tag, YAML_NULL_TAG) == 0)
        node = cJSON_CreateNull();
    else if (plain && (!tag || strcmp(tag, "!") != 0))
        node = typed_scalar(value);
    else
        node = cJSON_CreateString(value);
    if (!node) return fail_oom(L);
    if (set_pos(L, node, ev->start_mark) < 0) {
        cJSON_Delete(node);
        return -1;
    }
    *out = node;
    *sh = (shape){1, 0};
    return 0;
}

static int parse_alias(loader *L, int depth, cJSON **out, shape *sh)
{
    const char *name = (const char *)L->ev.data.alias.anchor;
    yaml_mark_t m = L->ev.start_mark;
    const anchor *a = find_anchor(L, name);
    if (!a)
        return fail_mark(L, m,
                         "unknown anchor \"%.100s\": an alias must refer to an anchor (&%.100s) "
                         "defined earlier in the same document",
                         name, name);
    if (depth + a->height > MAX_DEPTH)
        return fail_mark(L, m, "alias \"%.100s\" nests deeper than %d levels", name, MAX_DEPTH);
    if (charge_copies(L, a->count, m) < 0) return -1;
    cJSON *copy = copy_tree(L, a->node);
    if (!copy) return fail_oom(L);
    if (set_pos(L, copy, m) < 0) {
        cJSON_Delete(copy);
        return -1;
    }
    /* The original's key is not this copy's key. */
    pos_entry *e = pos_find(&L->y->pos, copy);
    e->kline = e->kcol = 0;
    *out = copy;
    *sh = (shape){a->count, a->height};
    return 0;
}

static int parse_sequence(loader *L, int depth, cJSON **out, shape *sh)
{
    cJSON *arr = cJSON_CreateArray();
    if (!arr) return fail_oom(L);
    if (set_pos(L, arr, L->ev.start_mark) < 0) goto err;
    *sh = (shape){1, 1};
    for (;;) {
        if (next_event(L) < 0) goto err;
        if (L->ev.type == YAML_SEQUENCE_END_EVENT) break;
        cJSON *item;
        shape ish;
        if (parse_node(L, depth + 1, &item, &ish) < 0) goto err;
        cJSON_AddItemToArray(arr, item);
        sh->count += ish.count;
        if (ish.height + 1 > sh->height) sh->height = ish.height + 1;
    }
    *out = arr;
    return 0;
err:
    cJSON_Delete(arr);
    return -1;
}

/* Keys of one mapping, for duplicate checks that stay linear on big maps:
 * small maps scan their members, big ones get a hash set. */
typedef struct keyset {
    const char **keys; /* the member names, owned by the cJSON members */
    size_t cap, n;
} keyset;

#define KEYSET_MIN 16

static size_t key_hash(const char *s, size_t cap)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return (size_t)h & (cap - 1);
}

static bool keyset_add(keyset *ks, const char *key)
{
    if ((ks->n + 1) * 2 > ks->cap) {
        size_t cap = ks->cap ? ks->cap * 2 : 64;
        const char **keys = calloc(cap, sizeof *keys);
        if (!keys) return false;
        for (size_t i = 0; i < ks->cap; i++) {
            if (!ks->keys[i]) continue;
            size_t j = key_hash(ks->keys[i], cap);
            while (keys[j]) j = (j + 1) & (cap - 1);
            keys[j] = ks->keys[i];
        }
        free(ks->keys);
        ks->keys = keys;
        ks->cap = cap;
    }
    size_t i = key_hash(key, ks->cap);
    while (ks->keys[i]) i = (i + 1) & (ks->cap - 1);
    ks->keys[i] = key;
    ks->n++;
    return true;
}

/* The member of obj named key, or NULL. */
static cJSON *member(const cJSON *obj, const keyset *ks, const char *key)
{
    if (!ks->cap) return cJSON_GetObjectItemCaseSensitive(obj, key);
    for (size_t i = key_hash(key, ks->cap); ks->keys[i]; i = (i + 1) & (ks->cap - 1))
        if (strcmp(ks->keys[i], key) == 0) return cJSON_GetObjectItemCaseSensitive(obj, key);
    return NULL;
}

/* Adds a member and keeps the keyset in step; false when out of memory
 * (value is then freed if it could not be attached). */
static bool add_member(cJSON *obj, keyset *ks, size_t *n, const char *key, cJSON *value)
{
    if (!cJSON_AddItemToObject(obj, key, value)) {
        cJSON_Delete(value);
        return false;
    }
    (*n)++;
    if (*n < KEYSET_MIN) return true;
    if (!ks->cap) {
        for (cJSON *m = obj->child; m; m = m->next)
            if (!keyset_add(ks, m->string)) return false;
        return true;
    }
    return keyset_add(ks, value->string);
}

/* Size and height of a finished subtree. */
static void count_nodes(const cJSON *node, shape *sh)
{
    size_t count = 1;
    int height = 0;
    for (const cJSON *c = node->child; c; c = c->next) {
        shape csh;
        count_nodes(c, &csh);
        count += csh.count;
        if (csh.height + 1 > height) height = csh.height + 1;
    }
    if (cJSON_IsObject(node) || cJSON_IsArray(node)) height = height ? height : 1;
    sh->count = count;
    sh->height = height;
}

/* The mappings a "<<" key merges in, in order; borrowed, not owned. */
typedef struct srclist {
    const cJSON **v;
    size_t n, cap;
} srclist;

static bool srclist_push(srclist *s, const cJSON *node)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 4;
        const cJSON **v = realloc(s->v, cap * sizeof *v);
        if (!v) return false;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = node;
    return true;
}

/* Reads the value of a "<<" key (its first event is in L->ev) into merge
 * sources. A value parsed here goes to *owned, which outlives the mapping. */
static int read_merge(loader *L, int depth, srclist *srcs, cJSON **owned)
{
    yaml_mark_t vm = L->ev.start_mark;
    if (L->ev.type == YAML_ALIAS_EVENT) {
        /* "<<: *base" reads the anchored mapping in place, without a copy. */
        const char *name = (const char *)L->ev.data.alias.anchor;
        const anchor *a = find_anchor(L, name);
        if (!a) return fail_mark(L, vm, "unknown anchor \"%.100s\" in merge key", name);
        if (!cJSON_IsObject(a->node)) goto bad;
        return srclist_push(srcs, a->node) ? 0 : fail_oom(L);
    }
    cJSON *v;
    shape vsh;
    if (parse_node(L, depth, &v, &vsh) < 0) return -1;
    if (!*owned && !(*owned = cJSON_CreateArray())) {
        cJSON_Delete(v);
        return fail_oom(L);
    }
    cJSON_AddItemToArray(*owned, v);
    if (cJSON_IsObject(v)) return srclist_push(srcs, v) ? 0 : fail_oom(L);
    if (!cJSON_IsArray(v)) goto bad;
    for (const cJSON *c = v->child; c; c = c->next) {
        if (!cJSON_IsObject(c)) {
            int l = 0, col = 0;
            csl_yaml_pos(L->y, c, &l, &col);
            return fail_at(L, l, col,
                           "merge key \"<<\" takes a mapping or a list of mappings; this item "
                           "is not a mapping");
        }
        if (!srclist_push(srcs, c)) return fail_oom(L);
    }
    return 0;
bad:
    return fail_mark(L, vm,
                     "merge key \"<<\" takes a mapping or a list of mappings, e.g. \"<<: "
                     "*defaults\"");
}

/* Applies the merge sources (mappings) in order: a key already present,
 * explicit or from an earlier source, wins. */
static int apply_merges(loader *L, cJSON *obj, keyset *ks, size_t *n, const srclist *srcs,
                        yaml_mark_t m)
{
    for (size_t s = 0; s < srcs->n; s++) {
        for (const cJSON *mem = srcs->v[s]->child; mem; mem = mem->next) {
            if (member(obj, ks, mem->string)) continue;
            shape sh;
            count_nodes(mem, &sh);
            if (charge_copies(L, sh.count, m) < 0) return -1;
            cJSON *c = copy_tree(L, mem);
            if (!c || !add_member(obj, ks, n, mem->string, c)) return fail_oom(L);
        }
    }
    return 0;
}

static int parse_mapping(loader *L, int depth, cJSON **out, shape *sh)
{
    yaml_mark_t start = L->ev.start_mark;
    cJSON *obj = cJSON_CreateObject();
    char *key = NULL;
    cJSON *merge_owned = NULL; /* merge values this mapping parsed itself */
    srclist srcs = {NULL, 0, 0};
    size_t nmembers = 0;
    keyset ks = {NULL, 0, 0};
    if (!obj) return fail_oom(L);
    if (set_pos(L, obj, start) < 0) goto err;
    *sh = (shape){1, 1};
    for (;;) {
        if (next_event(L) < 0) goto err;
        if (L->ev.type == YAML_MAPPING_END_EVENT) break;
        yaml_mark_t km = L->ev.start_mark;
        if (L->ev.type != YAML_SCALAR_EVENT) {
            fail_mark(L, km, "mapping keys must be plain strings, not %s",
                      L->ev.type == YAML_ALIAS_EVENT ? "aliases" : "mappings or sequences");
            goto err;
        }
        bool merge = L->ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
                     strcmp((const char *)L->ev.data.scalar.value, "<<") == 0;
        key = strdup((const char *)L->ev.data.scalar.value);
        if (!key) {
            fail_oom(L);
            goto err;
        }
        int kline = (int)km.line + 1, kcol = (int)km.column + 1;
        if (next_event(L) < 0) goto err;

        if (merge) {
            if (read_merge(L, depth + 1, &srcs, &merge_owned) < 0) goto err;
            free(key);
            key = NULL;
            continue;
        }

        cJSON *prev = member(obj, &ks, key);
        if (prev) {
            int pl = 0, pc = 0;
            csl_yaml_key_pos(L->y, prev, &pl, &pc);
            fail_at(L, kline, kcol,
                    "duplicate key \"%.100s\": it is already set at line %d, column %d; keep "
                    "one of them",
                    key, pl, pc);
            goto err;
        }
        cJSON *v;
        shape vsh;
        if (parse_node(L, depth + 1, &v, &vsh) < 0) goto err;
        if (!add_member(obj, &ks, &nmembers, key, v)) goto oom;
        free(key);
        key = NULL;
        if (set_key_pos(L, v, kline, kcol) < 0) goto err;
        sh->count += vsh.count;
        if (vsh.height + 1 > sh->height) sh->height = vsh.height + 1;
    }
    if (srcs.n) {
        if (apply_merges(L, obj, &ks, &nmembers, &srcs, start) < 0) goto err;
        count_nodes(obj, sh);
    }
    if (merge_owned) cJSON_AddItemToArray(L->graveyard, merge_owned);
    free(srcs.v);
    free(ks.keys);
    *out = obj;
    return 0;
oom:
    fail_oom(L);
err:
    free(key);
    free(srcs.v);
    free(ks.keys);
    cJSON_Delete(merge_owned);
    cJSON_Delete(obj);
    return -1;
}

/* Builds the node whose first event is in L->ev. */
static int parse_node(loader *L, int depth, cJSON **out, shape *sh)
{
    const char *anchor_name = NULL;
    yaml_mark_t m = L->ev.start_mark;
    int rc;
    if (depth > MAX_DEPTH) return fail_mark(L, m, "nesting is deeper than %d levels", MAX_DEPTH);
    switch (L->ev.type) {
    case YAML_SCALAR_EVENT:
        anchor_name = (const char *)L->ev.data.scalar.anchor;
        break;
    case YAML_SEQUENCE_START_EVENT:
        anchor_name = (const char *)L->ev.data.sequence_start.anchor;
        break;
    case YAML_MAPPING_START_EVENT:
        anchor_name = (const char *)L->ev.data.mapping_start.anchor;
        break;
    case YAML_ALIAS_EVENT:
        return parse_alias(L, depth, out, sh);
    default:
        return fail_mark(L, m, "expected a value");
    }
    /* The event is freed while the collection is read; keep the name. */
    char *anchor_copy = NULL;
    if (anchor_name && !(anchor_copy = strdup(anchor_name))) return fail_oom(L);
    if (L->ev.type == YAML_SCALAR_EVENT)
        rc = parse_scalar(L, out, sh);
    else if (L->ev.type == YAML_SEQUENCE_START_EVENT)
        rc = parse_sequence(L, depth, out, sh);
    else
        rc = parse_mapping(L, depth, out, sh);
    if (rc == 0 && anchor_copy && add_anchor(L, anchor_copy, *out, *sh) < 0) {
        cJSON_Delete(*out);
        *out = NULL;
        rc = -1;
    }
    free(anchor_copy);
    return rc;
}

static int add_doc(loader *L, cJSON *doc)
{
    csl_yaml *y = L->y;
    if (y->ndocs == y->cap) {
        size_t cap = y->cap ? y->cap * 2 : 4;
        cJSON **d = realloc(y->docs, cap * sizeof *d);
        if (!d) return fail_oom(L);
        y->docs = d;
        y->cap = cap;
    }
    y->docs[y->ndocs++] = doc;
    return 0;
}

/* Frees what merges left behind, after their document's anchors are gone. */
static void bury(loader *L)
{
    forget_tree(L->y, L->graveyard->child);
    cJSON_Delete(L->graveyard->child);
    L->graveyard->child = NULL;
}

static int load_stream(loader *L)
{
    if (next_event(L) < 0) return -1;
    if (L->ev.type != YAML_STREAM_START_EVENT) return fail_at(L, 1, 1, "expected a YAML stream");
    for (;;) {
        if (next_event(L) < 0) return -1;
        if (L->ev.type == YAML_STREAM_END_EVENT) return 0;
        if (L->ev.type != YAML_DOCUMENT_START_EVENT)
            return fail_mark(L, L->ev.start_mark, "expected a document");
        if (next_event(L) < 0) return -1;
        cJSON *doc;
        shape sh;
        if (parse_node(L, 0, &doc, &sh) < 0) return -1;
        if (add_doc(L, doc) < 0) {
            cJSON_Delete(doc);
            return -1;
        }
        if (next_event(L) < 0) return -1;
        if (L->ev.type != YAML_DOCUMENT_END_EVENT)
            return fail_mark(L, L->ev.start_mark, "expected the end of the document");
        clear_anchors(L);
        bury(L);
    }
}

csl_yaml *csl_yaml_load_string(const char *text, size_t len, const char *name, csl_yaml_err *err)
{
    if (!name || !*name) name = "<string>";
    csl_yaml *y = calloc(1, sizeof *y);
    loader L = {0};
    L.y = y;
    L.err = err;
    L.text = text ? text : "";
    L.len = text ? len : 0;
    if (!y || !(y->name = strdup(name)) || !(L.graveyard = cJSON_CreateArray())) {
        err_set(err, name, 0, 0, "out of memory");
        cJSON_Delete(L.graveyard);
        csl_yaml_free(y);
        return NULL;
    }
    if (!yaml_parser_initialize(&L.parser)) {
        err_set(err, name, 0, 0, "out of memory");
        cJSON_Delete(L.graveyard);
        csl_yaml_free(y);
        return NULL;
    }
    yaml_parser_set_input_string(&L.parser, (const unsigned char *)L.text, L.len);
    int rc = load_stream(&L);
    if (L.have_ev) yaml_event_delete(&L.ev);
    yaml_parser_delete(&L.parser);
    clear_anchors(&L);
    free(L.anchors);
    cJSON_Delete(L.graveyard);
    if (rc < 0) {
        csl_yaml_free(y);
        return NULL;
    }
    return y;
}

csl_yaml *csl_yaml_load_file(const char *path, csl_yaml_err *err)
{
    FILE *f = fopen(path, "rb");
    char *text = NULL;
    csl_yaml *y = NULL;
    if (!f) {
        err_set(err, path, 0, 0, "cannot open: %s", strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        err_set(err, path, 0, 0, "cannot read: it is a directory, not a YAML file");
        goto out;
    }
    size_t len = 0, cap = 4096;
    text = malloc(cap);
    if (!text) goto oom;
    for (;;) {
        if (len == cap) {
            if (cap >= MAX_FILE_SIZE) {
                err_set(err, path, 0, 0, "file is larger than %d MiB", MAX_FILE_SIZE >> 20);
                goto out;
            }
            char *p = realloc(text, cap * 2);
            if (!p) goto oom;
            text = p;
            cap *= 2;
        }
        size_t n = fread(text + len, 1, cap - len, f);
        len += n;
        if (n == 0) break;
    }
    if (ferror(f)) {
        err_set(err, path, 0, 0, "cannot read: %s", strerror(errno));
        goto out;
    }
    y = csl_yaml_load_string(text, len, path, err);
    goto out;
oom:
    err_set(err, path, 0, 0, "out of memory");
out:
    free(text);
    fclose(f);
    return y;
}
