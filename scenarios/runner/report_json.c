/* report_json.c — report.json (every measurement of a run, schema
 * docs/report.schema.json), reading it back for compare, writing the whole
 * report directory atomically, and the helpers the other writers share.
 *
 * One idea: report.json is the run's record, so it holds raw figures (each
 * latency, each sample) next to their summaries, and "not measured" is
 * null, never a 0 or a -1 someone could mistake for a measurement. The
 * loader rebuilds an sr_run through the same appenders the engine uses, so
 * a loaded run is indistinguishable from a live one. */
#include "report.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "csl/clock.h"
#include "report_util.h"
#include "slo.h"

#define SCHEMA_VERSION 1
/* Integers above 2^53 do not survive a JSON number; seeds that large are
 * written as decimal strings. */
#define JSON_EXACT_INT 9007199254740992.0

/* ====================================================== shared helpers */

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when invalid. */
static size_t utf8_len(const unsigned char *s)
{
    unsigned c = s[0];
    size_t n;
    unsigned min;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        min = 0x10000;
    } else
        return 0;
    unsigned cp = c & (0x3F >> (n - 1));
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    /* Overlong forms, surrogates and the XML non-characters U+FFFE/FFFF. */
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) || cp == 0xFFFE || cp == 0xFFFF)
        return 0;
    return n;
}

void sr_rpt_escape(FILE *out, const char *s, bool attr)
{
    if (!s) return;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned char c = *p;
        if (c < 0x80) {
            switch (c) {
            case '&':
                fputs("&amp;", out);
                break;
            case '<':
                fputs("&lt;", out);
                break;
            case '>':
                fputs("&gt;", out);
                break;
            case '"':
                fputs("&quot;", out);
                break;
            case '\'':
                fputs("&#39;", out);
                break;
            case '\t':
            case '\n':
            case '\r':
                if (attr)
                    fprintf(out, "&#%d;", c);
                else
                    fputc(c, out);
                break;
            default:
                /* C0 controls and DEL cannot appear in XML 1.0 text. */
                if (c >= 0x20 && c != 0x7F) fputc(c, out);
            }
            p++;
            continue;
        }
        size_t n = utf8_len(p);
        if (n == 0) {
            fputs("\xEF\xBF\xBD", out); /* U+FFFD for each bad byte */
            p++;
            continue;
        }
        fwrite(p, 1, n, out);
        p += n;
    }
}

void sr_rpt_seconds(char *out, size_t sz, double s)
{
    if (!(s >= 0) || isinf(s))
        snprintf(out, sz, "—");
    else if (s == 0)
        snprintf(out, sz, "0s");
    else if (s < 1)
        snprintf(out, sz, "%.0fms", s * 1000);
    else if (s < 60)
        snprintf(out, sz, "%.3gs", s);
    else {
        long m = (long)(s / 60);
        snprintf(out, sz, "%ldm%02.0fs", m, floor(s - (double)m * 60));
    }
}

void sr_rpt_figure(char *out, size_t sz, double v, const char *unit)
{
    if (!unit) unit = "";
    if (isnan(v))
        snprintf(out, sz, "—");
    else if (strcmp(unit, "s") == 0)
        sr_rpt_seconds(out, sz, v);
    else if (strcmp(unit, "%") == 0)
        snprintf(out, sz, "%.1f%%", v);
    else if (strcmp(unit, "ratio") == 0)
        snprintf(out, sz, "%.2f%%", v * 100);
    else if (*unit)
        snprintf(out, sz, "%.4g %s", v, unit);
    else
        snprintf(out, sz, "%.4g", v);
}

void sr_rpt_first_line(char *out, size_t sz, const char *s, size_t max)
{
    if (sz == 0) return;
    out[0] = '\0';
    if (!s) return;
    size_t n = strcspn(s, "\r\n");
    bool cut = n > max;
    if (n > max) n = max;
    if (n + 4 > sz) {
        n = sz > 4 ? sz - 4 : 0;
        cut = true;
    }
    /* Back off to a character boundary. */
    while (cut && n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) n--;
    memcpy(out, s, n);
    out[n] = '\0';
    if (cut && sz > n + 3) memcpy(out + n, "…", 4);
}

bool sr_rpt_needs_scenario_case(const sr_scenario_result *s)
{
    if (s->status == SR_PASS || s->status == SR_SKIP) return false;
    for (size_t i = 0; i < s->n_steps; i++)
        if (s->steps[i].status == SR_FAIL || s->steps[i].status == SR_ERROR) return false;
    for (size_t i = 0; i < s->n_checks; i++)
        if (s->checks[i].status == SR_FAIL || s->checks[i].status == SR_ERROR) return false;
    return true;
}

static void tally_add(sr_rpt_tally *t, sr_status st)
{
    t->tests++;
    if (st == SR_FAIL) t->failures++;
    if (st == SR_ERROR) t->errors++;
    if (st == SR_SKIP) t->skipped++;
}

sr_rpt_tally sr_rpt_tally_of(const sr_scenario_result *s)
{
    sr_rpt_tally t = {0, 0, 0, 0};
    for (size_t i = 0; i < s->n_steps; i++) tally_add(&t, s->steps[i].status);
    for (size_t i = 0; i < s->n_checks; i++) tally_add(&t, s->checks[i].status);
    if (sr_rpt_needs_scenario_case(s)) tally_add(&t, s->status);
    /* A skipped scenario with nothing recorded still shows as one case. */
    if (t.tests == 0 && s->status == SR_SKIP) tally_add(&t, SR_SKIP);
    return t;
}

/* ========================================================== report.json */

/* A JSON string must be UTF-8 (RFC 8259), but step output and messages
 * may hold any bytes: invalid sequences become U+FFFD. Returns NULL when
 * s is already valid (the common case, no copy). */
static char *utf8_clean(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t bad = 0;
    for (size_t n; *p; p += n ? n : 1) {
        n = utf8_len(p);
        bad += n == 0;
    }
    if (!bad) return NULL;
    char *out = malloc(strlen(s) + bad * 2 + 1), *w = out;
    if (!out) return NULL;
    for (p = (const unsigned char *)s; *p;) {
        size_t n = utf8_len(p);
        if (n == 0) {
            memcpy(w, "\xEF\xBF\xBD", 3);
            w += 3;
            p++;
        } else {
            memcpy(w, p, n);
            w += n;
            p += n;
        }
    }
    *w = '\0';
    return out;
}

static cJSON *json_string(const char *s)
{
    char *clean = utf8_clean(s);
    cJSON *v = cJSON_CreateString(clean ? clean : s);
    free(clean);
    return v;
}

static void add_str(cJSON *o, const char *k, const char *s)
{
    cJSON_AddItemToObject(o, k, s ? json_string(s) : cJSON_CreateNull());
}

/* A number, or null when NaN/infinite (JSON has neither). */
static void add_num(cJSON *o, const char *k, double v)
{
    cJSON_AddItemToObject(o, k, isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull());
}

/* A measurement: null when < 0 (the model's "not measured"). */
static void add_measured(cJSON *o, const char *k, double v)
{
    add_num(o, k, v >= 0 ? v : NAN);
}

static void add_seed(cJSON *o, const char *k, uint64_t seed)
{
    if ((double)seed < JSON_EXACT_INT) {
        cJSON_AddNumberToObject(o, k, (double)seed);
    } else {
        char tmp[24];
        snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)seed);
        cJSON_AddStringToObject(o, k, tmp);
    }
}

static void add_time(cJSON *o, const char *k_iso, const char *k_ms, int64_t ms)
{
    char iso[CSL_RFC3339_LEN];
    csl_rfc3339_ms(ms, iso);
    cJSON_AddStringToObject(o, k_iso, iso);
    cJSON_AddNumberToObject(o, k_ms, (double)ms);
}

static cJSON *stats_json(const double *v, size_t n)
{
    sr_stats st;
    sr_stats_compute(v, n, &st);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "n", (double)st.n);
    add_num(o, "min", st.min);
    add_num(o, "max", st.max);
    add_num(o, "avg", st.avg);
    add_num(o, "p50", st.p50);
    add_num(o, "p95", st.p95);
    add_num(o, "p99", st.p99);
    return o;
}

/* {"seconds": [...], "stats": {...}} */
static cJSON *series_json(const double *v, size_t n)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(o, "seconds");
    for (size_t i = 0; i < n; i++)
        cJSON_AddItemToArray(arr, isfinite(v[i]) ? cJSON_CreateNumber(v[i]) : cJSON_CreateNull());
    cJSON_AddItemToObject(o, "stats", stats_json(v, n));
    return o;
}

static cJSON *step_json(const sr_step_result *st)
{
    cJSON *o = cJSON_CreateObject();
    add_str(o, "name", st->name);
    add_str(o, "file", st->file);
    cJSON_AddNumberToObject(o, "line", st->line);
    add_str(o, "status", sr_status_name(st->status));
    add_num(o, "startSeconds", st->start_s);
    add_num(o, "durationSeconds", st->duration_s);
    add_str(o, "message", st->message);
    add_str(o, "diff", st->diff);
    add_str(o, "output", st->output);
    return o;
}

static cJSON *check_json(const sr_check_result *c)
{
    cJSON *o = cJSON_CreateObject();
    add_str(o, "kind", c->kind == SR_CHECK_SLO ? "slo" : "invariant");
    add_str(o, "name", c->name);
    add_str(o, "status", sr_status_name(c->status));
    add_num(o, "value", c->value);
    add_num(o, "threshold", c->threshold);
    add_str(o, "unit", c->unit);
    add_str(o, "message", c->message);
    return o;
}

/* Per-object ratios that compare and the SLOs use; null when either side
 * is unmeasured or nothing was created. */
static double per_object(double v, long objects)
{
    return (v >= 0 && objects > 0) ? v / (double)objects : NAN;
}

static cJSON *totals_json(const sr_scenario_result *s)
{
    cJSON *o = cJSON_CreateObject();
    add_measured(o, "objectsCreated", (double)s->objects_created);
    add_measured(o, "cloudCalls", s->cloud_calls);
    add_measured(o, "kubeWrites", s->kube_writes);
    add_measured(o, "reconciles", s->reconciles);
    add_measured(o, "reconcileErrors", s->reconcile_errors);
    add_measured(o, "cpuPeakCores", s->cpu_peak_cores);
    add_measured(o, "rssPeakBytes", s->rss_peak_bytes);
    add_num(o, "cloudCallsPerObject", per_object(s->cloud_calls, s->objects_created));
    add_num(o, "kubeWritesPerObject", per_object(s->kube_writes, s->objects_created));
    add_num(o, "reconcileErrorRate",
            (s->reconciles > 0 && s->reconcile_errors >= 0) ? s->reconcile_errors / s->reconciles
                                                            : NAN);
    return o;
}

static cJSON *scenario_json(const sr_scenario_result *s)
{
    cJSON *o = cJSON_CreateObject();
    add_str(o, "name", s->name);
    add_str(o, "file", s->file);
    add_str(o, "namespace", s->ns);
    cJSON *tags = cJSON_AddArrayToObject(o, "tags");
    for (size_t i = 0; i < s->n_tags; i++)
        cJSON_AddItemToArray(tags, json_string(s->tags[i] ? s->tags[i] : ""));
    add_str(o, "status", sr_status_name(s->status));
    add_str(o, "message", s->message);
    add_time(o, "start", "startMs", s->start_ms);
    add_num(o, "durationSeconds", s->duration_s);
    add_num(o, "realDurationSeconds", s->real_duration_s);
    add_num(o, "timeScale", s->time_scale);
    add_seed(o, "seed", s->seed);

    cJSON *steps = cJSON_AddArrayToObject(o, "steps");
    for (size_t i = 0; i < s->n_steps; i++) cJSON_AddItemToArray(steps, step_json(&s->steps[i]));
    cJSON *checks = cJSON_AddArrayToObject(o, "checks");
    for (size_t i = 0; i < s->n_checks; i++)
        cJSON_AddItemToArray(checks, check_json(&s->checks[i]));

    cJSON_AddItemToObject(o, "createToReady", series_json(s->ctr_s, s->n_ctr));
    cJSON_AddItemToObject(o, "recovery", series_json(s->recovery_s, s->n_recovery));

    cJSON *tl = cJSON_AddArrayToObject(o, "timeline");
    for (size_t i = 0; i < s->n_timeline; i++) {
        const sr_timeline_event *e = &s->timeline[i];
        cJSON *x = cJSON_CreateObject();
        add_str(x, "kind", e->kind);
        add_str(x, "what", e->what);
        add_num(x, "startSeconds", e->start_s);
        add_measured(x, "endSeconds", e->end_s);
        cJSON_AddItemToArray(tl, x);
    }
    cJSON *samples = cJSON_AddArrayToObject(o, "samples");
    for (size_t i = 0; i < s->n_samples; i++) {
        const sr_sample *p = &s->samples[i];
        cJSON *x = cJSON_CreateObject();
        add_num(x, "t", p->t_s);
        cJSON_AddNumberToObject(x, "objects", p->objects);
        cJSON_AddNumberToObject(x, "ready", p->ready);
        add_measured(x, "cpuCores", p->cpu_cores);
        add_measured(x, "rssBytes", p->rss_bytes);
        cJSON_AddItemToArray(samples, x);
    }
    cJSON *reasons = cJSON_AddArrayToObject(o, "eventReasons");
    for (size_t i = 0; i < s->n_event_reasons; i++) {
        cJSON *x = cJSON_CreateObject();
        add_str(x, "reason", s->event_reasons[i].key);
        cJSON_AddNumberToObject(x, "count", (double)s->event_reasons[i].n);
        cJSON_AddItemToArray(reasons, x);
    }
    cJSON_AddItemToObject(o, "totals", totals_json(s));
    return o;
}

cJSON *sr_report_json(const sr_run *r)
{
    cJSON *root = cJSON_CreateObject();
    if (!root) return NULL;
    cJSON_AddNumberToObject(root, "schemaVersion", SCHEMA_VERSION);
    cJSON *run = cJSON_AddObjectToObject(root, "run");
    add_str(run, "id", r->run_id);
    add_str(run, "status", sr_status_name(sr_run_status(r)));
    add_str(run, "target", r->target);
    add_str(run, "runnerVersion", r->runner_version);
    add_time(run, "start", "startMs", r->start_ms);
    add_num(run, "durationSeconds", r->duration_s);
    add_measured(run, "runnerCpuSeconds", r->runner_cpu_s);
    add_seed(run, "seed", r->seed);
    add_num(run, "timeScale", r->time_scale);
    cJSON_AddNumberToObject(run, "parallel", r->parallel);
    add_str(run, "breakMode", r->break_mode);
    size_t counts[4] = {0, 0, 0, 0};
    for (size_t i = 0; i < r->n_scenarios; i++) counts[r->scenarios[i]->status]++;
    cJSON *tot = cJSON_AddObjectToObject(run, "totals");
    cJSON_AddNumberToObject(tot, "scenarios", (double)r->n_scenarios);
    cJSON_AddNumberToObject(tot, "passed", (double)counts[SR_PASS]);
    cJSON_AddNumberToObject(tot, "failed", (double)counts[SR_FAIL]);
    cJSON_AddNumberToObject(tot, "errors", (double)counts[SR_ERROR]);
    cJSON_AddNumberToObject(tot, "skipped", (double)counts[SR_SKIP]);

    cJSON *arr = cJSON_AddArrayToObject(root, "scenarios");
    for (size_t i = 0; i < r->n_scenarios; i++)
        cJSON_AddItemToArray(arr, scenario_json(r->scenarios[i]));
    return root;
}

/* ============================================================== loading */

static const char *get_str(const cJSON *o, const char *k)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(x) ? x->valuestring : NULL;
}

/* A number; null or absent is def (the writer's "not measured"). */
static double get_num(const cJSON *o, const char *k, double def)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(x) ? x->valuedouble : def;
}

static uint64_t get_seed(const cJSON *o, const char *k)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    if (cJSON_IsNumber(x) && x->valuedouble >= 0) return (uint64_t)x->valuedouble;
    if (cJSON_IsString(x)) return strtoull(x->valuestring, NULL, 10);
    return 0;
}

static sr_status status_of(const char *s)
{
    if (!s) return SR_ERROR;
    if (strcmp(s, "pass") == 0) return SR_PASS;
    if (strcmp(s, "fail") == 0) return SR_FAIL;
    if (strcmp(s, "skip") == 0) return SR_SKIP;
    return SR_ERROR;
}

static const cJSON *get_arr(const cJSON *o, const char *k)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsArray(x) ? x : NULL;
}

static int load_series(const cJSON *o, const char *k, sr_scenario_result *s,
                       int (*add)(sr_scenario_result *, double))
{
    const cJSON *series = cJSON_GetObjectItemCaseSensitive(o, k);
    const cJSON *x;
    cJSON_ArrayForEach(x, get_arr(series, "seconds"))
    {
        if (add(s, cJSON_IsNumber(x) ? x->valuedouble : NAN) != 0) return -1;
    }
    return 0;
}

/* One scenario object into r. -1 on no memory. */
static int load_scenario(sr_run *r, const cJSON *o)
{
    sr_scenario_result *s = sr_run_add_scenario(r, get_str(o, "name"), get_str(o, "file"));
    if (!s) return -1;
    sr_set_str(&s->ns, get_str(o, "namespace"));
    const cJSON *x;
    const cJSON *tags = get_arr(o, "tags");
    if (tags && cJSON_GetArraySize(tags) > 0) {
        s->tags = calloc((size_t)cJSON_GetArraySize(tags), sizeof *s->tags);
        if (!s->tags) return -1;
        cJSON_ArrayForEach(x, tags)
        {
            if (cJSON_IsString(x) && !(s->tags[s->n_tags] = strdup(x->valuestring))) return -1;
            if (cJSON_IsString(x)) s->n_tags++;
        }
    }
    s->status = status_of(get_str(o, "status"));
    sr_set_str(&s->message, get_str(o, "message"));
    s->start_ms = (int64_t)get_num(o, "startMs", 0);
    s->duration_s = get_num(o, "durationSeconds", NAN);
    s->real_duration_s = get_num(o, "realDurationSeconds", NAN);
    s->time_scale = get_num(o, "timeScale", 1);
    s->seed = get_seed(o, "seed");

    cJSON_ArrayForEach(x, get_arr(o, "steps"))
    {
        sr_step_result *st = sr_result_add_step(s, get_str(x, "name"), get_str(x, "file"),
                                                (int)get_num(x, "line", 0));
        if (!st) return -1;
        st->status = status_of(get_str(x, "status"));
        st->start_s = get_num(x, "startSeconds", NAN);
        st->duration_s = get_num(x, "durationSeconds", NAN);
        sr_set_str(&st->message, get_str(x, "message"));
        sr_set_str(&st->diff, get_str(x, "diff"));
        sr_set_str(&st->output, get_str(x, "output"));
    }
    cJSON_ArrayForEach(x, get_arr(o, "checks"))
    {
        const char *kind = get_str(x, "kind");
        if (!sr_result_add_check(
                s, kind && strcmp(kind, "slo") == 0 ? SR_CHECK_SLO : SR_CHECK_INVARIANT,
                get_str(x, "name"), status_of(get_str(x, "status")), get_num(x, "value", NAN),
                get_num(x, "threshold", NAN), get_str(x, "unit"), get_str(x, "message")))
            return -1;
    }
    if (load_series(o, "createToReady", s, sr_result_add_ctr) != 0) return -1;
    if (load_series(o, "recovery", s, sr_result_add_recovery) != 0) return -1;
    cJSON_ArrayForEach(x, get_arr(o, "timeline"))
    {
        if (!sr_result_add_event(s, get_str(x, "kind"), get_str(x, "what"),
                                 get_num(x, "startSeconds", NAN), get_num(x, "endSeconds", -1)))
            return -1;
    }
    cJSON_ArrayForEach(x, get_arr(o, "samples"))
    {
        sr_sample smp = {
            .t_s = get_num(x, "t", NAN),
            .objects = (int)get_num(x, "objects", 0),
            .ready = (int)get_num(x, "ready", 0),
            .cpu_cores = get_num(x, "cpuCores", -1),
            .rss_bytes = get_num(x, "rssBytes", -1),
        };
        if (sr_result_add_sample(s, &smp) != 0) return -1;
    }
    cJSON_ArrayForEach(x, get_arr(o, "eventReasons"))
    {
        if (sr_result_count(s, get_str(x, "reason"), (long)get_num(x, "count", 0)) != 0) return -1;
    }
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "totals");
    s->objects_created = (long)get_num(t, "objectsCreated", -1);
    s->cloud_calls = get_num(t, "cloudCalls", -1);
    s->kube_writes = get_num(t, "kubeWrites", -1);
    s->reconciles = get_num(t, "reconciles", -1);
    s->reconcile_errors = get_num(t, "reconcileErrors", -1);
    s->cpu_peak_cores = get_num(t, "cpuPeakCores", -1);
    s->rss_peak_bytes = get_num(t, "rssPeakBytes", -1);
    return 0;
}

/* The whole file at path, NUL-terminated; NULL with errno. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *data = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 65536;
            char *p = realloc(data, cap);
            if (!p) {
                free(data);
                fclose(f);
                errno = ENOMEM;
                return NULL;
            }
            data = p;
        }
        size_t got = fread(data + len, 1, cap - len - 1, f);
        len += got;
        if (got == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(data);
        errno = EIO;
        return NULL;
    }
    data[len] = '\0';
    return data;
}

sr_run *sr_report_load(const char *path, char *err, size_t errsz)
{
    char file[4096];
    struct stat st;
    sr_run *r = NULL;
    char *text = NULL;
    cJSON *root = NULL;
    if (!path) {
        snprintf(err, errsz, "no report path given");
        return NULL;
    }
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        snprintf(file, sizeof file, "%s/report.json", path);
    else
        snprintf(file, sizeof file, "%s", path);

    text = slurp(file);
    if (!text) {
        snprintf(err, errsz, "%s: %s (give a run directory or its report.json)", file,
                 strerror(errno));
        goto fail;
    }
    root = cJSON_Parse(text);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        snprintf(err, errsz, "%s: not valid JSON (near byte %ld)", file,
                 at && at >= text ? (long)(at - text) : -1L);
        goto fail;
    }
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(root, "schemaVersion");
    if (!cJSON_IsNumber(ver) || ver->valuedouble != SCHEMA_VERSION) {
        if (cJSON_IsNumber(ver))
            snprintf(err, errsz, "%s: schemaVersion %g is not supported (this runner reads %d)",
                     file, ver->valuedouble, SCHEMA_VERSION);
        else
            snprintf(err, errsz, "%s: no schemaVersion: not a scenario-runner report.json", file);
        goto fail;
    }
    const cJSON *run = cJSON_GetObjectItemCaseSensitive(root, "run");
    const cJSON *scenarios = cJSON_GetObjectItemCaseSensitive(root, "scenarios");
    if (!cJSON_IsObject(run) || !cJSON_IsArray(scenarios)) {
        snprintf(err, errsz,
                 "%s: not a scenario-runner report (no \"run\" object or "
                 "\"scenarios\" array)",
                 file);
        goto fail;
    }
    r = sr_run_new(get_str(run, "id"), get_str(run, "target"));
    if (!r) goto oom;
    sr_set_str(&r->runner_version, get_str(run, "runnerVersion"));
    sr_set_str(&r->break_mode, get_str(run, "breakMode"));
    r->start_ms = (int64_t)get_num(run, "startMs", 0);
    r->duration_s = get_num(run, "durationSeconds", NAN);
    r->runner_cpu_s = get_num(run, "runnerCpuSeconds", -1);
    r->seed = get_seed(run, "seed");
    r->time_scale = get_num(run, "timeScale", 1);
    r->parallel = (int)get_num(run, "parallel", 1);
    const cJSON *x;
    cJSON_ArrayForEach(x, scenarios)
    {
        if (!cJSON_IsObject(x)) {
            snprintf(err, errsz, "%s: a scenario entry is not an object", file);
            goto fail;
        }
        if (load_scenario(r, x) != 0) goto oom;
    }
    cJSON_Delete(root);
    free(text);
    return r;
oom:
    snprintf(err, errsz, "%s: out of memory", file);
fail:
    sr_run_free(r);
    cJSON_Delete(root);
    free(text);
    return NULL;
}

/* ====================================================== the run directory */

typedef int (*writer_fn)(const sr_run *r, FILE *out);

static int json_writer(const sr_run *r, FILE *out)
{
    cJSON *root = sr_report_json(r);
    char *text = root ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    if (!text) {
        errno = ENOMEM;
        return -1;
    }
    int rc = (fputs(text, out) < 0 || fputc('\n', out) == EOF) ? -1 : 0;
    free(text);
    return rc;
}

/* Writes name in dir through a temporary file renamed over it, so a reader
 * sees the old file or the new one, never half of one. */
static int write_atomic(const sr_run *r, const char *dir, const char *name, writer_fn fn, char *err,
                        size_t errsz)
{
    char path[4096], tmp[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s/.%s.XXXXXX", dir, name);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        snprintf(err, errsz, "%s: cannot create a temporary file: %s", path, strerror(errno));
        return -1;
    }
    /* mkstemp makes 0600; reports are for everyone who can read the dir. */
    fchmod(fd, 0644);
    FILE *f = fdopen(fd, "w");
    if (!f) {
        snprintf(err, errsz, "%s: %s", path, strerror(errno));
        close(fd);
        unlink(tmp);
        return -1;
    }
    errno = 0;
    int rc = fn(r, f);
    int saved = errno;
    if (fflush(f) != 0 && rc == 0) {
        rc = -1;
        saved = errno;
    }
    if (rc == 0 && fsync(fileno(f)) != 0 && errno != EINVAL) {
        rc = -1;
        saved = errno;
    }
    if (fclose(f) != 0 && rc == 0) {
        rc = -1;
        saved = errno;
    }
    if (rc == 0 && rename(tmp, path) != 0) {
        rc = -1;
        saved = errno;
    }
    if (rc != 0) {
        snprintf(err, errsz, "%s: cannot write: %s", path, strerror(saved ? saved : EIO));
        unlink(tmp);
    }
    return rc;
}

/* mkdir -p */
static int make_dirs(const char *dir)
{
    char tmp[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(tmp, dir, n + 1);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
    return 0;
}

int sr_report_write_all(const sr_run *r, const char *dir, char *err, size_t errsz)
{
    if (!r || !dir) {
        snprintf(err, errsz, "no run or no report directory");
        return -1;
    }
    if (make_dirs(dir) != 0) {
        snprintf(err, errsz, "%s: cannot create the report directory: %s", dir, strerror(errno));
        return -1;
    }
    /* report.json first: it is what compare and soak readers depend on. */
    static const struct {
        const char *name;
        writer_fn fn;
    } files[] = {
        {"report.json", json_writer},
        {"junit.xml", sr_report_junit},
        {"report.html", sr_report_html},
        {"summary.md", sr_report_summary_md},
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        if (write_atomic(r, dir, files[i].name, files[i].fn, err, errsz) != 0) return -1;
    return 0;
}
