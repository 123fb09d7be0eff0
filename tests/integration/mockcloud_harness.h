/* mockcloud_harness.h — runs the real bin/mockcloud on a free loopback port
 * and talks to it over HTTP with libcurl, for the integration tests.
 *
 * Header-only (static functions), because the Makefile links each
 * tests/integration/test_*.c as a program of its own.
 *
 * The one idea: a test never leaves anything behind, even when a FATAL
 * assertion longjmps out of it. Servers, temp dirs and kept JSON all live in
 * pools owned by this file; mch_teardown (every suite's per-test tear-down)
 * and an atexit hook kill whatever still runs, free what was kept and remove
 * the temp dirs. The child also asks the kernel to SIGKILL it if the test
 * process dies first (PR_SET_PDEATHSIG).
 *
 * mch_stop is the normal end of a server: SIGTERM, a bounded wait, exit
 * status 0 required, and no AddressSanitizer/UBSan report in its stderr
 * (captured to a file in the test's temp dir, printed on any failure).
 *
 * Environment: CSL_BIN_DIR (where mockcloud is; default "bin"),
 * CSL_KEEP_TMP=1 keeps the temp dirs for a post-mortem. */
#ifndef MOCKCLOUD_HARNESS_H
#define MOCKCLOUD_HARNESS_H

#include <CUnit/CUnit.h>
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Temp dirs are short (mkdtemp under $TMPDIR); paths inside them fit. */
#define MCH_DIR_LEN 256
#define MCH_PATH_LEN 1024
#define MCH_MAX_SERVERS 8
#define MCH_MAX_DIRS 16
#define MCH_MAX_KEPT 256
#define MCH_START_TIMEOUT_MS 15000
#define MCH_STOP_TIMEOUT_MS 15000
#define MCH_HTTP_TIMEOUT_MS 10000

/* One HTTP exchange. cc is libcurl's result: anything but CURLE_OK means no
 * complete reply (status is then 0 or whatever had arrived). */
typedef struct mch_resp {
    CURLcode cc;
    long status;
    char *body; /* NUL-terminated, "" when none */
    size_t len;
    char *headers; /* raw header block of the final response */
    size_t hlen;
    cJSON *json; /* body parsed, NULL when empty or not JSON */
    double secs; /* total time of the exchange */
} mch_resp;

/* Per-request options; all optional. */
typedef struct mch_opts {
    const char *token;          /* bearer; NULL: the server's default for the path; "": none */
    const char *idem_key;       /* Idempotency-Key header */
    const char *const *headers; /* extra "Name: value" lines, NULL-terminated */
    long timeout_ms;            /* 0: MCH_HTTP_TIMEOUT_MS */
    bool fresh;                 /* a new connection: libcurl silently resends a request
                                   whose reused connection died before any reply, which
                                   would hide a reset or an empty reply from the test */
} mch_opts;

typedef struct mch_server {
    bool used;
    pid_t pid; /* > 0 while running */
    int port;
    int starts; /* how many times started; names the stderr.N files */
    char dir[MCH_DIR_LEN];
    char base[64];
    char err_path[MCH_PATH_LEN];
    CURL *curl;
    const char *token; /* default bearer for /v1 (NULL: none) */
    const char *admin; /* bearer for /_mock (NULL: none) */
    bool fresh;        /* every request on a new connection (see mch_opts.fresh) */
    mch_resp last;     /* the last reply; valid until the next request */
} mch_server;

/* Outcome of a run to completion (mch_run). */
typedef struct mch_exit {
    int code;  /* exit status, or 128 + signal, or -1 when it had to be killed */
    char *out; /* stdout text (owned by the kept pool) */
    char *err; /* stderr text (owned by the kept pool) */
} mch_exit;

static mch_server mch_servers[MCH_MAX_SERVERS];
static char mch_dirs[MCH_MAX_DIRS][MCH_DIR_LEN];
static void *mch_kept[MCH_MAX_KEPT];
static int mch_kept_json[MCH_MAX_KEPT];
static bool mch_inited;

/* ------------------------------------------------------------ small utils */

static inline int64_t mch_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void mch_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

/* Remembers p (malloc'd) or a cJSON tree to free at tear-down; returns it. */
static inline void *mch_keep_ptr(void *p, int is_json)
{
    if (!p) return NULL;
    for (int i = 0; i < MCH_MAX_KEPT; i++) {
        if (!mch_kept[i]) {
            mch_kept[i] = p;
            mch_kept_json[i] = is_json;
            return p;
        }
    }
    fprintf(stderr, "harness: kept pool full, leaking one object\n");
    return p;
}

static inline cJSON *mch_keep(cJSON *j)
{
    return mch_keep_ptr(j, 1);
}

/* A file's whole content (NUL-terminated, caller frees), or NULL. */
static inline char *mch_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (cap - n - 1 == 0) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (!buf) return NULL;
    buf[n] = '\0';
    if (len) *len = n;
    return buf;
}

/* Writes text to dir/name; the full path goes to path_out (MCH_PATH_LEN). */
static inline int mch_write_file(const char *dir, const char *name, const char *text,
                                 char *path_out)
{
    char path[MCH_PATH_LEN];
    snprintf(path, sizeof path, "%.256s/%.256s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t n = strlen(text);
    int ok = fwrite(text, 1, n, f) == n;
    ok &= fclose(f) == 0;
    if (path_out) snprintf(path_out, MCH_PATH_LEN, "%s", path);
    return ok ? 0 : -1;
}

static inline const char *mch_bin_dir(void)
{
    const char *d = getenv("CSL_BIN_DIR");
    return d && *d ? d : "bin";
}

static inline void mch_print_tail(const char *what, const char *text, size_t max)
{
    if (!text) return;
    size_t n = strlen(text);
    const char *from = n > max ? text + n - max : text;
    fprintf(stderr, "----- %s%s -----\n%s%s----- end -----\n", what, n > max ? " (tail)" : "", from,
            n && text[n - 1] == '\n' ? "" : "\n");
}

/* True when a sanitizer reported an error in text. */
static inline bool mch_has_sanitizer_report(const char *text)
{
    return text && (strstr(text, "ERROR: AddressSanitizer") || strstr(text, "runtime error:") ||
                    strstr(text, "ERROR: LeakSanitizer") || strstr(text, "ERROR: ThreadSanitizer"));
}

/* ------------------------------------------------------------ JSON helpers */

/* The node at a dotted path ("error.code"), or NULL. */
static inline const cJSON *mch_at(const cJSON *j, const char *path)
{
    char key[128];
    while (j && path && *path) {
        const char *dot = strchr(path, '.');
        size_t n = dot ? (size_t)(dot - path) : strlen(path);
        if (n >= sizeof key) return NULL;
        memcpy(key, path, n);
        key[n] = '\0';
        j = cJSON_GetObjectItemCaseSensitive(j, key);
        path = dot ? dot + 1 : NULL;
    }
    return j;
}

static inline const char *mch_str(const cJSON *j, const char *path)
{
    const cJSON *n = mch_at(j, path);
    return cJSON_IsString(n) ? n->valuestring : NULL;
}

/* The number at path, or def when absent or not a number. */
static inline double mch_num(const cJSON *j, const char *path, double def)
{
    const cJSON *n = mch_at(j, path);
    return cJSON_IsNumber(n) ? n->valuedouble : def;
}

static inline bool mch_streq(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

/* ------------------------------------------------------------ pools, clean-up */

static inline int mch_rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(p);
    return 0;
}

static inline void mch_resp_clear(mch_resp *r)
{
    free(r->body);
    free(r->headers);
    cJSON_Delete(r->json);
    memset(r, 0, sizeof *r);
}

static inline int mch_wait_exit(pid_t pid, long timeout_ms, int *code);

/* Kills every server still running (a test failed on its way), frees what
 * was kept, removes the temp dirs. Safe to call any time. */
static inline void mch_teardown(void)
{
    for (int i = 0; i < MCH_MAX_SERVERS; i++) {
        mch_server *s = &mch_servers[i];
        if (!s->used) continue;
        if (s->pid > 0) {
            kill(s->pid, SIGKILL);
            int code;
            mch_wait_exit(s->pid, 5000, &code);
            fprintf(stderr, "harness: mockcloud pid %d was still running at tear-down; killed\n",
                    (int)s->pid);
            char *err = mch_read_file(s->err_path, NULL);
            mch_print_tail("mockcloud stderr", err, 4000);
            free(err);
            s->pid = 0;
        }
        mch_resp_clear(&s->last);
        if (s->curl) curl_easy_cleanup(s->curl);
        memset(s, 0, sizeof *s);
    }
    for (int i = 0; i < MCH_MAX_KEPT; i++) {
        if (!mch_kept[i]) continue;
        if (mch_kept_json[i])
            cJSON_Delete(mch_kept[i]);
        else
            free(mch_kept[i]);
        mch_kept[i] = NULL;
    }
    const char *keep = getenv("CSL_KEEP_TMP");
    for (int i = 0; i < MCH_MAX_DIRS; i++) {
        if (!mch_dirs[i][0]) continue;
        if (keep && *keep == '1')
            fprintf(stderr, "harness: kept %s\n", mch_dirs[i]);
        else
            nftw(mch_dirs[i], mch_rm_one, 16, FTW_DEPTH | FTW_PHYS);
        mch_dirs[i][0] = '\0';
    }
}

static inline void mch_atexit(void)
{
    mch_teardown();
    curl_global_cleanup();
}

static inline void mch_init(void)
{
    if (mch_inited) return;
    mch_inited = true;
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    atexit(mch_atexit);
}

/* A fresh temp dir, removed at tear-down. Returns its path (pool-owned) or
 * NULL. */
static inline const char *mch_tmpdir(void)
{
    mch_init();
    for (int i = 0; i < MCH_MAX_DIRS; i++) {
        if (mch_dirs[i][0]) continue;
        const char *t = getenv("TMPDIR");
        snprintf(mch_dirs[i], MCH_DIR_LEN, "%s/mockcloud-it-XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(mch_dirs[i])) {
            fprintf(stderr, "harness: mkdtemp %s: %s\n", mch_dirs[i], strerror(errno));
            mch_dirs[i][0] = '\0';
            return NULL;
        }
        return mch_dirs[i];
    }
    fprintf(stderr, "harness: too many temp dirs\n");
    return NULL;
}

/* A server slot working in dir (NULL: a fresh temp dir). Not started yet. */
static inline mch_server *mch_new(const char *dir)
{
    mch_init();
    if (!dir) dir = mch_tmpdir();
    if (!dir) return NULL;
    for (int i = 0; i < MCH_MAX_SERVERS; i++) {
        mch_server *s = &mch_servers[i];
        if (s->used) continue;
        memset(s, 0, sizeof *s);
        s->used = true;
        snprintf(s->dir, sizeof s->dir, "%s", dir);
        s->curl = curl_easy_init();
        return s;
    }
    fprintf(stderr, "harness: too many servers\n");
    return NULL;
}

/* ------------------------------------------------------------ processes */

/* Waits up to timeout_ms for pid; 0 and *code (exit status or 128+signal),
 * or -1 when it is still running. */
static inline int mch_wait_exit(pid_t pid, long timeout_ms, int *code)
{
    int64_t end = mch_now_ms() + timeout_ms;
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            *code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            return 0;
        }
        if (r < 0 && errno != EINTR) {
            *code = -1;
            return 0;
        }
        if (mch_now_ms() >= end) return -1;
        mch_sleep_ms(5);
    }
}

/* Forks and execs mockcloud with args (NULL-terminated; argv[0] is added),
 * stdout and stderr to the given files. Returns the pid or -1. */
static inline pid_t mch_spawn(const char *const *args, const char *out_path, const char *err_path)
{
    char bin[MCH_PATH_LEN];
    snprintf(bin, sizeof bin, "%.900s/mockcloud", mch_bin_dir());
    if (access(bin, X_OK) != 0) {
        fprintf(stderr, "harness: %s: %s (set CSL_BIN_DIR to the folder of the built programs)\n",
                bin, strerror(errno));
        return -1;
    }
    const char *argv[64];
    int n = 0;
    argv[n++] = bin;
    for (int i = 0; args && args[i] && n < 63; i++) argv[n++] = args[i];
    argv[n] = NULL;

    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "harness: fork: %s\n", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(127);
        int in = open("/dev/null", O_RDONLY);
        int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (in < 0 || out < 0 || err < 0) _exit(127);
        dup2(in, 0);
        dup2(out, 1);
        dup2(err, 2);
        /* Client sockets of the test must not live on in the server. */
        for (int fd = 3; fd < 1024; fd++) close(fd);
        signal(SIGPIPE, SIG_DFL);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    return pid;
}

/* Runs mockcloud with args to completion (bounded by timeout_ms) in dir, for
 * --help, bad flags and start-up failures. Fills *ex; the texts are kept
 * until tear-down. Returns 0, or -1 when it did not finish in time (it is
 * then killed and ex->code is -1). */
static inline int mch_run(const char *dir, const char *const *args, long timeout_ms, mch_exit *ex)
{
    static int runs;
    char out_path[MCH_PATH_LEN], err_path[MCH_PATH_LEN];
    runs++;
    snprintf(out_path, sizeof out_path, "%s/run%d.stdout", dir, runs);
    snprintf(err_path, sizeof err_path, "%s/run%d.stderr", dir, runs);
    memset(ex, 0, sizeof *ex);
    ex->code = -1;
    ex->out = ex->err = "";
    pid_t pid = mch_spawn(args, out_path, err_path);
    if (pid < 0) return -1;
    int rc = 0;
    if (mch_wait_exit(pid, timeout_ms, &ex->code) != 0) {
        kill(pid, SIGKILL);
        int dummy;
        mch_wait_exit(pid, 5000, &dummy);
        ex->code = -1;
        rc = -1;
    }
    ex->out = mch_keep_ptr(mch_read_file(out_path, NULL), 0);
    ex->err = mch_keep_ptr(mch_read_file(err_path, NULL), 0);
    if (!ex->out) ex->out = "";
    if (!ex->err) ex->err = "";
    if (mch_has_sanitizer_report(ex->err)) {
        fprintf(stderr, "harness: sanitizer report from mockcloud %s\n",
                args && args[0] ? args[0] : "");
        mch_print_tail("mockcloud stderr", ex->err, 8000);
        CU_FAIL("sanitizer report in mockcloud's stderr");
    }
    return rc;
}

/* Starts mockcloud on 127.0.0.1:0 with extra args (NULL-terminated, may be
 * NULL) in s->dir, and waits (bounded) for its port file. Returns 0, or -1
 * with the reason and mockcloud's stderr printed (the process is gone). */
static inline int mch_start(mch_server *s, const char *const *extra)
{
    if (!s) return -1;
    if (s->pid > 0) {
        fprintf(stderr, "harness: server already running\n");
        return -1;
    }
    char port_path[MCH_PATH_LEN], out_path[MCH_PATH_LEN];
    snprintf(port_path, sizeof port_path, "%s/port", s->dir);
    unlink(port_path);
    s->starts++;
    snprintf(out_path, sizeof out_path, "%s/stdout.%d", s->dir, s->starts);
    snprintf(s->err_path, sizeof s->err_path, "%s/stderr.%d", s->dir, s->starts);

    const char *args[64];
    int n = 0;
    args[n++] = "--listen";
    args[n++] = "127.0.0.1:0";
    args[n++] = "--port-file";
    args[n++] = port_path;
    for (int i = 0; extra && extra[i] && n < 63; i++) args[n++] = extra[i];
    args[n] = NULL;

    s->pid = mch_spawn(args, out_path, s->err_path);
    if (s->pid < 0) {
        s->pid = 0;
        return -1;
    }
    int64_t end = mch_now_ms() + MCH_START_TIMEOUT_MS;
    for (;;) {
        int code;
        if (mch_wait_exit(s->pid, 0, &code) == 0) {
            fprintf(stderr, "harness: mockcloud exited with %d during start-up\n", code);
            char *err = mch_read_file(s->err_path, NULL);
            mch_print_tail("mockcloud stderr", err, 4000);
            free(err);
            s->pid = 0;
            return -1;
        }
        char *txt = mch_read_file(port_path, NULL);
        if (txt && strchr(txt, '\n')) {
            s->port = atoi(txt);
            free(txt);
            break;
        }
        free(txt);
        if (mch_now_ms() >= end) {
            fprintf(stderr, "harness: no port file after %d ms\n", MCH_START_TIMEOUT_MS);
            kill(s->pid, SIGKILL);
            mch_wait_exit(s->pid, 5000, &code);
            s->pid = 0;
            return -1;
        }
        mch_sleep_ms(10);
    }
    if (s->port <= 0 || s->port > 65535) {
        fprintf(stderr, "harness: bad port in port file\n");
        return -1;
    }
    snprintf(s->base, sizeof s->base, "http://127.0.0.1:%d", s->port);
    return 0;
}

/* Checks this run's stderr for sanitizer reports; prints it when bad or
 * when show is set. Returns 0 when clean. */
static inline int mch_check_stderr(mch_server *s, bool show)
{
    char *err = mch_read_file(s->err_path, NULL);
    int bad = mch_has_sanitizer_report(err);
    if (bad) fprintf(stderr, "harness: sanitizer report in mockcloud's stderr\n");
    if (bad || show) mch_print_tail("mockcloud stderr", err, 8000);
    free(err);
    return bad ? -1 : 0;
}

/* SIGTERM, bounded wait. Returns 0 when mockcloud exited with status 0 and
 * its stderr holds no sanitizer report; else -1, with stderr printed. */
static inline int mch_stop(mch_server *s)
{
    if (!s || s->pid <= 0) return -1;
    kill(s->pid, SIGTERM);
    int code;
    int rc = 0;
    if (mch_wait_exit(s->pid, MCH_STOP_TIMEOUT_MS, &code) != 0) {
        fprintf(stderr, "harness: mockcloud ignored SIGTERM for %d ms; killing\n",
                MCH_STOP_TIMEOUT_MS);
        kill(s->pid, SIGKILL);
        mch_wait_exit(s->pid, 5000, &code);
        rc = -1;
    } else if (code != 0) {
        fprintf(stderr, "harness: mockcloud exited with %d after SIGTERM\n", code);
        rc = -1;
    }
    s->pid = 0;
    if (mch_check_stderr(s, rc != 0) != 0) rc = -1;
    return rc;
}

/* SIGKILL and reap. Returns 0 when no sanitizer report was written before. */
static inline int mch_kill9(mch_server *s)
{
    if (!s || s->pid <= 0) return -1;
    kill(s->pid, SIGKILL);
    int code;
    mch_wait_exit(s->pid, 5000, &code);
    s->pid = 0;
    return mch_check_stderr(s, false);
}

/* ------------------------------------------------------------ HTTP */

typedef struct mch_buf {
    char *p;
    size_t n, cap;
} mch_buf;

static inline size_t mch_buf_add(mch_buf *b, const char *data, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) return 0;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, data, n);
    b->n += n;
    b->p[b->n] = '\0';
    return n;
}

static inline size_t mch_on_body(char *data, size_t sz, size_t nm, void *ud)
{
    return mch_buf_add(ud, data, sz * nm);
}

static inline size_t mch_on_header(char *data, size_t sz, size_t nm, void *ud)
{
    mch_buf *b = ud;
    /* A new status line starts a new header block (after 100 Continue). */
    if (sz * nm >= 5 && strncmp(data, "HTTP/", 5) == 0) b->n = 0;
    return mch_buf_add(b, data, sz * nm);
}

/* One exchange on handle c (reset first) with base URL base. Fills *out
 * (cleared first; free with mch_resp_clear). Returns out->cc. */
static inline CURLcode mch_http(CURL *c, const char *base, const char *method, const char *path,
                                const char *body, const char *bearer, const mch_opts *o,
                                mch_resp *out)
{
    memset(out, 0, sizeof *out);
    char url[2048];
    snprintf(url, sizeof url, "%s%s", base, path);
    mch_buf bb = {0}, hb = {0};
    struct curl_slist *h = NULL;
    char line[512];

    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS,
                     o && o->timeout_ms ? o->timeout_ms : (long)MCH_HTTP_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    if (o && o->fresh) curl_easy_setopt(c, CURLOPT_FRESH_CONNECT, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, mch_on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &bb);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, mch_on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &hb);
    if (strcmp(method, "GET") != 0) curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
        h = curl_slist_append(h, "Content-Type: application/json");
    } else if (strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
               strcmp(method, "PATCH") == 0) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L);
    }
    h = curl_slist_append(h, "Expect:");
    if (bearer && *bearer) {
        snprintf(line, sizeof line, "Authorization: Bearer %s", bearer);
        h = curl_slist_append(h, line);
    }
    if (o && o->idem_key) {
        snprintf(line, sizeof line, "Idempotency-Key: %s", o->idem_key);
        h = curl_slist_append(h, line);
    }
    for (int i = 0; o && o->headers && o->headers[i]; i++) h = curl_slist_append(h, o->headers[i]);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);

    out->cc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
    curl_easy_getinfo(c, CURLINFO_TOTAL_TIME, &out->secs);
    curl_slist_free_all(h);
    out->body = bb.p ? bb.p : strdup("");
    out->len = bb.n;
    out->headers = hb.p ? hb.p : strdup("");
    out->hlen = hb.n;
    if (out->cc == CURLE_OK && out->len) out->json = cJSON_Parse(out->body);
    return out->cc;
}

/* A request to s; the reply is s->last (valid until the next request). */
static inline mch_resp *mch_req(mch_server *s, const char *method, const char *path,
                                const char *body, const mch_opts *o)
{
    mch_resp_clear(&s->last);
    mch_opts fo;
    if (s->fresh) {
        fo = o ? *o : (mch_opts){0};
        fo.fresh = true;
        o = &fo;
    }
    const char *bearer = o && o->token                     ? o->token
                         : strncmp(path, "/_mock", 6) == 0 ? s->admin
                                                           : s->token;
    mch_http(s->curl, s->base, method, path, body, bearer, o, &s->last);
    return &s->last;
}

/* Shorthands; path is a printf format. */
static inline mch_resp *mch_vreq(mch_server *s, const char *method, const char *body,
                                 const mch_opts *o, const char *fmt, va_list ap)
{
    char path[1536];
    vsnprintf(path, sizeof path, fmt, ap);
    return mch_req(s, method, path, body, o);
}

static inline mch_resp *mch_get(mch_server *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static inline mch_resp *mch_get(mch_server *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    mch_resp *r = mch_vreq(s, "GET", NULL, NULL, fmt, ap);
    va_end(ap);
    return r;
}

static inline mch_resp *mch_del(mch_server *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static inline mch_resp *mch_del(mch_server *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    mch_resp *r = mch_vreq(s, "DELETE", NULL, NULL, fmt, ap);
    va_end(ap);
    return r;
}

/* method with a body (may be NULL). */
static inline mch_resp *mch_send(mch_server *s, const char *method, const char *body,
                                 const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static inline mch_resp *mch_send(mch_server *s, const char *method, const char *body,
                                 const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    mch_resp *r = mch_vreq(s, method, body, NULL, fmt, ap);
    va_end(ap);
    return r;
}

/* The value of header name in r (case-insensitive), trimmed, into out;
 * false when absent. */
static inline bool mch_header(const mch_resp *r, const char *name, char *out, size_t outsz)
{
    size_t nl = strlen(name);
    const char *p = r->headers;
    while (p && *p) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        if (len > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            const char *e = p + len;
            while (v < e && (*v == ' ' || *v == '\t')) v++;
            while (e > v && (e[-1] == '\r' || e[-1] == ' ')) e--;
            snprintf(out, outsz, "%.*s", (int)(e - v), v);
            return true;
        }
        p = eol ? eol + 1 : NULL;
    }
    return false;
}

/* True when r is a JSON error reply with that status (and code, when not
 * NULL) and a non-empty message; else prints what came instead. */
static inline bool mch_is_error(const mch_resp *r, long status, const char *code)
{
    const char *c = mch_str(r->json, "error.code");
    const char *m = mch_str(r->json, "error.message");
    bool ok =
        r->cc == CURLE_OK && r->status == status && c && m && *m && (!code || strcmp(c, code) == 0);
    if (!ok)
        fprintf(stderr, "  expected error %ld %s, got curl=%d status=%ld body=%.400s\n", status,
                code ? code : "(any code)", (int)r->cc, r->status, r->body ? r->body : "");
    return ok;
}

/* Like mch_is_error, and the message also contains needle. */
static inline bool mch_error_names(const mch_resp *r, long status, const char *needle)
{
    if (!mch_is_error(r, status, NULL)) return false;
    const char *m = mch_str(r->json, "error.message");
    if (strstr(m, needle)) return true;
    fprintf(stderr, "  error message does not name \"%s\": %s\n", needle, m);
    return false;
}

/* Prints r when its status is not want; returns status == want. */
static inline bool mch_expect(const mch_resp *r, long want)
{
    if (r->cc == CURLE_OK && r->status == want) return true;
    fprintf(stderr, "  expected %ld, got curl=%d (%s) status=%ld body=%.400s\n", want, (int)r->cc,
            curl_easy_strerror(r->cc), r->status, r->body ? r->body : "");
    return false;
}

/* ------------------------------------------------------------ cloud helpers */

/* A valid create body. tags_json is the inside of the tags object
 * ("\"owner\":\"a\"") or NULL. */
static inline void mch_instance_body(char *buf, size_t n, const char *name, const char *zone,
                                     const char *tags_json)
{
    snprintf(buf, n,
             "{\"name\":\"%s\",\"cpu\":2,\"memoryMiB\":4096,\"diskGiB\":40,"
             "\"image\":\"debian-12\",\"zone\":\"%s\",\"networkType\":\"standard\","
             "\"ipCount\":1,\"tags\":{%s}}",
             name, zone, tags_json ? tags_json : "");
}

/* POSTs a create; on 2xx copies the instance id into id (64 bytes).
 * Returns the HTTP status (0 on a transport error). */
static inline long mch_create(mch_server *s, const char *name, const char *zone,
                              const char *tags_json, const char *key, char *id)
{
    char body[1024];
    mch_instance_body(body, sizeof body, name, zone, tags_json);
    mch_opts o = {.idem_key = key};
    mch_resp *r = mch_req(s, "POST", "/v1/instances", body, &o);
    if (id) id[0] = '\0';
    if (r->cc != CURLE_OK) return 0;
    const char *got = mch_str(r->json, "id");
    if (id && got && r->status / 100 == 2) snprintf(id, 64, "%s", got);
    return r->status;
}

/* Polls GET /v1/instances/{id} until its state is want (bounded). Returns
 * 0, or -1 with the last state seen printed. */
static inline int mch_wait_state(mch_server *s, const char *id, const char *want, long timeout_ms)
{
    int64_t end = mch_now_ms() + timeout_ms;
    char last[64] = "";
    for (;;) {
        mch_resp *r = mch_get(s, "/v1/instances/%s", id);
        const char *st = mch_str(r->json, "state");
        if (r->status == 200 && mch_streq(st, want)) return 0;
        snprintf(last, sizeof last, "%ld/%s", r->status, st ? st : "-");
        if (mch_now_ms() >= end) break;
        mch_sleep_ms(20);
    }
    fprintf(stderr, "  instance %s did not reach %s in %ld ms (last: %s)\n", id, want, timeout_ms,
            last);
    return -1;
}

/* Polls until GET /v1/{what}/{id} answers 404 (bounded). 0 or -1. */
static inline int mch_wait_gone(mch_server *s, const char *what, const char *id, long timeout_ms)
{
    int64_t end = mch_now_ms() + timeout_ms;
    for (;;) {
        mch_resp *r = mch_get(s, "/v1/%s/%s", what, id);
        if (r->status == 404) return 0;
        if (mch_now_ms() >= end) break;
        mch_sleep_ms(20);
    }
    fprintf(stderr, "  %s %s still there after %ld ms\n", what, id, timeout_ms);
    return -1;
}

/* Adds a fault rule (JSON text) through /_mock/faults; 0 on 201. */
static inline int mch_add_rule(mch_server *s, const char *rule_json)
{
    mch_resp *r = mch_send(s, "POST", rule_json, "/_mock/faults");
    if (r->status == 201) return 0;
    fprintf(stderr, "  adding rule %s: status %ld %s\n", rule_json, r->status, r->body);
    return -1;
}

/* Removes, recursively, members whose name is in keys (NULL-terminated):
 * values that change with the clock alone. */
static inline void mch_strip(cJSON *j, const char *const *keys)
{
    if (!j) return;
    for (int i = 0; keys[i]; i++) cJSON_DeleteItemFromObjectCaseSensitive(j, keys[i]);
    for (cJSON *c = j->child; c; c = c->next) mch_strip(c, keys);
}

/* Everything a bad request must not change: the state dump, the fault rules
 * and the tokens, in one tree (kept until tear-down). NULL on failure. */
static inline cJSON *mch_world(mch_server *s)
{
    static const char *const volatile_keys[] = {"now", "uptimeSeconds", "serverTime", NULL};
    cJSON *w = cJSON_CreateObject();
    mch_keep(w);
    const char *parts[][2] = {
        {"state", "/_mock/state"}, {"faults", "/_mock/faults"}, {"tokens", "/_mock/tokens"}};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        mch_resp *r = mch_get(s, "%s", parts[i][1]);
        if (r->status != 200 || !r->json) {
            fprintf(stderr, "  GET %s: %ld %.200s\n", parts[i][1], r->status, r->body);
            return NULL;
        }
        cJSON *j = r->json;
        r->json = NULL;
        mch_strip(j, volatile_keys);
        cJSON_AddItemToObject(w, parts[i][0], j);
    }
    return w;
}

/* True when the world is as before; prints both when not. */
static inline bool mch_world_same(const cJSON *before, const cJSON *after, const char *what)
{
    if (before && after && cJSON_Compare(before, after, 1)) return true;
    char *a = before ? cJSON_PrintUnformatted(before) : NULL;
    char *b = after ? cJSON_PrintUnformatted(after) : NULL;
    fprintf(stderr, "  %s changed the world:\n  before %.1500s\n  after  %.1500s\n", what,
            a ? a : "(none)", b ? b : "(none)");
    free(a);
    free(b);
    return false;
}

/* Sums the values of Prometheus sample lines that start with prefix (a
 * metric name followed by "{…" or " "); -1 when there is none. */
static inline double mch_metric_sum(const char *text, const char *prefix)
{
    double sum = 0;
    bool found = false;
    size_t pl = strlen(prefix);
    for (const char *p = text; p && *p;) {
        const char *eol = strchr(p, '\n');
        if (*p != '#' && strncmp(p, prefix, pl) == 0) {
            /* The value follows the last space before the end of line (the
             * sample has no timestamp in our exposition). */
            const char *e = eol ? eol : p + strlen(p);
            const char *sp = e;
            while (sp > p && sp[-1] != ' ') sp--;
            if (sp > p) {
                sum += strtod(sp, NULL);
                found = true;
            }
        }
        p = eol ? eol + 1 : NULL;
    }
    return found ? sum : -1;
}

/* The configuration most tests start with: fast lifecycle, two zones. */
#define MCH_FAST_CLOUD                                                                             \
    "cloud:\n"                                                                                     \
    "  timings: {create: 50ms, resize: 50ms, stop: 50ms, start: 50ms, reboot: 50ms,\n"             \
    "            delete: 50ms, snapshot: 50ms}\n"                                                  \
    "  zones: [hk-1a, hk-1b]\n"                                                                    \
    "  images: [debian-12, ubuntu-24.04]\n"

/* Writes config text to dir/name.yaml and starts s with --config and the
 * extra args. 0 or -1. */
static inline int mch_start_with_config(mch_server *s, const char *config, const char *const *extra)
{
    static char cfg_path[MCH_PATH_LEN];
    if (mch_write_file(s->dir, "config.yaml", config, cfg_path) != 0) return -1;
    const char *args[48];
    int n = 0;
    args[n++] = "--config";
    args[n++] = cfg_path;
    for (int i = 0; extra && extra[i] && n < 47; i++) args[n++] = extra[i];
    args[n] = NULL;
    return mch_start(s, args);
}

#endif
