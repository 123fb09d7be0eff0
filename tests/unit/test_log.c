/* test_log.c — csl_log: text and JSON shapes, level filtering, escaping and
 * whole lines under concurrent writers. Output is captured through a pipe
 * drained by a reader thread, so large volumes never block the writers. */
#include "../testutil.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>
#include <cjson/cJSON.h>

#include "csl/buf.h"
#include "csl/clock.h"
#include "csl/log.h"

static struct {
    int fds[2];
    pthread_t reader;
    csl_buf out;
} cap;

static void *drain(void *arg)
{
    char chunk[8192];
    ssize_t n;
    while ((n = read(cap.fds[0], chunk, sizeof chunk)) != 0) {
        if (n < 0) {
            if (errno == EINTR) continue;
            break;
        }
        csl_buf_append(&cap.out, chunk, (size_t)n);
    }
    return arg;
}

static void capture_start(const char *logger, csl_log_level min, csl_log_format fmt)
{
    csl_buf_init(&cap.out);
    CU_ASSERT_FATAL(pipe(cap.fds) == 0);
    CU_ASSERT_FATAL(pthread_create(&cap.reader, NULL, drain, NULL) == 0);
    csl_log_setup(logger, min, fmt, cap.fds[1]);
}

/* Returns what was logged since capture_start; the caller frees it. */
static char *capture_stop(void)
{
    csl_log_setup(NULL, CSL_LOG_INFO, CSL_LOG_TEXT, 2);
    close(cap.fds[1]);
    pthread_join(cap.reader, NULL);
    close(cap.fds[0]);
    return csl_buf_steal(&cap.out);
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

/* Parses the single JSON line in out (asserting it is exactly one line). */
static cJSON *one_json_line(const char *out)
{
    CU_ASSERT_EQUAL(count_lines(out), 1);
    size_t len = strlen(out);
    CU_ASSERT(len > 0 && out[len - 1] == '\n');
    cJSON *j = cJSON_ParseWithLength(out, len);
    CU_ASSERT_PTR_NOT_NULL(j);
    return j;
}

static void test_text_shape(void)
{
    capture_start("mockcloud", CSL_LOG_INFO, CSL_LOG_TEXT);
    csl_log(CSL_LOG_INFO, "listening", "addr", "127.0.0.1:8080", "note", "two words", NULL);
    char *out = capture_stop();
    CU_ASSERT_EQUAL(count_lines(out), 1);
    /* "2026-11-26T14:21:26.123Z INFO  mockcloud: listening addr=... note=..." */
    CU_ASSERT(strlen(out) > 25);
    char ts[25];
    memcpy(ts, out, 24);
    ts[24] = '\0';
    int64_t ms = 0;
    CU_ASSERT_EQUAL(csl_rfc3339_parse(ts, &ms), 0);
    int64_t now = csl_wall_ms();
    CU_ASSERT(ms <= now && ms > now - 600000);
    CU_ASSERT_STRING_EQUAL(out + 24, " INFO  mockcloud: listening addr=127.0.0.1:8080 "
                                     "note=\"two words\"\n");
    free(out);
}

static void test_text_escaping(void)
{
    capture_start("t", CSL_LOG_DEBUG, CSL_LOG_TEXT);
    csl_log(CSL_LOG_WARN, "multi\nline", "q", "say \"hi\"\\", "empty", "", "nul", NULL, "ctl",
            "a\x01z", "utf8", "h\xc3\xa9llo", NULL);
    char *out = capture_stop();
    CU_ASSERT_EQUAL(count_lines(out), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, " WARN  t: multi\\nline q=\"say \\\"hi\\\"\\\\\" empty=\"\" "
                                       "nul= ctl=\"a\\x01z\" utf8=h\xc3\xa9llo\n"));
    free(out);
}

static void test_json_shape(void)
{
    capture_start("operator", CSL_LOG_DEBUG, CSL_LOG_JSON);
    csl_log(CSL_LOG_ERROR, "reconcile failed", "object", "default/web-1", "reason", NULL, NULL);
    char *out = capture_stop();
    cJSON *j = one_json_line(out);
    if (j) {
        const char *keys[] = {"ts", "level", "logger", "msg", "object", "reason"};
        const cJSON *m = j->child;
        for (size_t i = 0; i < 6; i++, m = m ? m->next : NULL) {
            CU_ASSERT_PTR_NOT_NULL_FATAL(m);
            CU_ASSERT_STRING_EQUAL(m->string, keys[i]);
        }
        CU_ASSERT_PTR_NULL(m);
        int64_t ms;
        CU_ASSERT_EQUAL(csl_rfc3339_parse(cJSON_GetObjectItem(j, "ts")->valuestring, &ms), 0);
        CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(j, "level")->valuestring, "error");
        CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(j, "logger")->valuestring, "operator");
        CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(j, "msg")->valuestring, "reconcile failed");
        CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(j, "object")->valuestring, "default/web-1");
        CU_ASSERT(cJSON_IsNull(cJSON_GetObjectItem(j, "reason")));
    }
    cJSON_Delete(j);
    free(out);
}

static void test_json_escaping(void)
{
    const char *nasty = "q\"b\\n\nr\rt\tc\x01\x1f del\x7f h\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80";
    capture_start("x", CSL_LOG_DEBUG, CSL_LOG_JSON);
    csl_log(CSL_LOG_INFO, nasty, "k\"ey", nasty, NULL);
    csl_log(CSL_LOG_INFO, "bad utf8", "v",
            "a\xff"
            "b\xc3",
            "overlong", "\xc0\xaf", NULL);
    char *out = capture_stop();
    CU_ASSERT_EQUAL(count_lines(out), 2);
    /* Raw control bytes never appear in the output; UTF-8 is not escaped. */
    for (const char *p = out; *p; p++)
        if (*p != '\n') CU_ASSERT((unsigned char)*p >= 0x20 && *p != 0x7f);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\\\"b\\\\n\\nr\\rt\\tc\\u0001\\u001f del\\u007f"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "h\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80"));
    char *nl = strchr(out, '\n');
    CU_ASSERT_PTR_NOT_NULL_FATAL(nl);
    cJSON *first = cJSON_ParseWithLength(out, (size_t)(nl - out));
    cJSON *second = cJSON_Parse(nl + 1);
    CU_ASSERT_PTR_NOT_NULL(first);
    CU_ASSERT_PTR_NOT_NULL(second);
    if (first) {
        CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(first, "msg")->valuestring, nasty);
        cJSON *k = cJSON_GetObjectItemCaseSensitive(first, "k\"ey");
        CU_ASSERT(k && strcmp(k->valuestring, nasty) == 0);
    }
    if (second) {
        CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(second, "v")->valuestring, "a\xef\xbf\xbd"
                                                                              "b\xef\xbf\xbd");
        CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(second, "overlong")->valuestring,
                               "\xef\xbf\xbd\xef\xbf\xbd");
    }
    cJSON_Delete(first);
    cJSON_Delete(second);
    free(out);
}

static void test_levels(void)
{
    capture_start("lv", CSL_LOG_WARN, CSL_LOG_TEXT);
    CU_ASSERT_FALSE(csl_log_enabled(CSL_LOG_DEBUG));
    CU_ASSERT_FALSE(csl_log_enabled(CSL_LOG_INFO));
    CU_ASSERT_TRUE(csl_log_enabled(CSL_LOG_WARN));
    CU_ASSERT_TRUE(csl_log_enabled(CSL_LOG_ERROR));
    csl_debugf("d %d", 1);
    csl_infof("i %d", 2);
    csl_warnf("w %d", 3);
    csl_errorf("e %s", "four");
    csl_log(CSL_LOG_INFO, "hidden", NULL);
    csl_log(CSL_LOG_ERROR, "shown", NULL);
    char *out = capture_stop();
    CU_ASSERT_EQUAL(count_lines(out), 3);
    CU_ASSERT_PTR_NULL(strstr(out, "d 1"));
    CU_ASSERT_PTR_NULL(strstr(out, "i 2"));
    CU_ASSERT_PTR_NULL(strstr(out, "hidden"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, " WARN  lv: w 3\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, " ERROR lv: e four\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, " ERROR lv: shown\n"));
    free(out);

    capture_start(NULL, CSL_LOG_DEBUG, CSL_LOG_JSON);
    csl_debugf("fmt %s=%d", "x", 42);
    out = capture_stop();
    cJSON *j = one_json_line(out);
    if (j) {
        CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(j, "level")->valuestring, "debug");
        CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(j, "msg")->valuestring, "fmt x=42");
        CU_ASSERT_PTR_NULL(cJSON_GetObjectItem(j, "logger"));
    }
    cJSON_Delete(j);
    free(out);
}

static void test_parse_names(void)
{
    static const struct {
        const char *s;
        bool ok;
        csl_log_level level;
    } cases[] = {
        {"debug", true, CSL_LOG_DEBUG},
        {"info", true, CSL_LOG_INFO},
        {"warn", true, CSL_LOG_WARN},
        {"warning", true, CSL_LOG_WARN},
        {"error", true, CSL_LOG_ERROR},
        {"ERROR", true, CSL_LOG_ERROR},
        {"", false, 0},
        {"fatal", false, 0},
        {"infos", false, 0},
        {NULL, false, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        csl_log_level l = (csl_log_level)99;
        CU_ASSERT_EQUAL(csl_log_level_parse(cases[i].s, &l), cases[i].ok);
        CU_ASSERT_EQUAL(l, cases[i].ok ? cases[i].level : (csl_log_level)99);
    }
    csl_log_format f = (csl_log_format)7;
    CU_ASSERT_TRUE(csl_log_format_parse("json", &f));
    CU_ASSERT_EQUAL(f, CSL_LOG_JSON);
    CU_ASSERT_TRUE(csl_log_format_parse("text", &f));
    CU_ASSERT_EQUAL(f, CSL_LOG_TEXT);
    CU_ASSERT_FALSE(csl_log_format_parse("yaml", &f));
    CU_ASSERT_EQUAL(f, CSL_LOG_TEXT);
}

static void test_errno_kept(void)
{
    capture_start("e", CSL_LOG_DEBUG, CSL_LOG_TEXT);
    errno = ENOENT;
    csl_log(CSL_LOG_INFO, "x", "k", "v", NULL);
    CU_ASSERT_EQUAL(errno, ENOENT);
    csl_infof("open failed: %m");
    CU_ASSERT_EQUAL(errno, ENOENT);
    char *out = capture_stop();
    CU_ASSERT_PTR_NOT_NULL(strstr(out, strerror(ENOENT)));
    free(out);
}

/* Records longer than PIPE_BUF (4096), from several threads at once, must
 * still arrive as whole lines. */
enum { WRITERS = 4, RECORDS = 150, PAD = 6000 };

static void *writer(void *arg)
{
    int id = (int)(intptr_t)arg;
    char pad[PAD + 1], ids[16], seq[16];
    memset(pad, 'a' + id, PAD);
    pad[PAD] = '\0';
    snprintf(ids, sizeof ids, "%d", id);
    for (int i = 0; i < RECORDS; i++) {
        snprintf(seq, sizeof seq, "%d", i);
        csl_log(CSL_LOG_INFO, "burst", "writer", ids, "seq", seq, "pad", pad, NULL);
    }
    return NULL;
}

static void test_concurrent_lines(void)
{
    capture_start("c", CSL_LOG_INFO, CSL_LOG_JSON);
    pthread_t t[WRITERS];
    for (int i = 0; i < WRITERS; i++)
        CU_ASSERT_FATAL(pthread_create(&t[i], NULL, writer, (void *)(intptr_t)i) == 0);
    for (int i = 0; i < WRITERS; i++) pthread_join(t[i], NULL);
    char *out = capture_stop();
    CU_ASSERT_EQUAL(count_lines(out), WRITERS * RECORDS);
    int next[WRITERS] = {0};
    size_t bad = 0;
    for (char *line = out, *nl; (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
        cJSON *j = cJSON_ParseWithLength(line, (size_t)(nl - line));
        const cJSON *w = cJSON_GetObjectItem(j, "writer");
        const cJSON *s = cJSON_GetObjectItem(j, "seq");
        const cJSON *p = cJSON_GetObjectItem(j, "pad");
        if (!j || !cJSON_IsString(w) || !cJSON_IsString(s) || !cJSON_IsString(p)) {
            bad++;
        } else {
            int id = atoi(w->valuestring);
            if (id < 0 || id >= WRITERS || atoi(s->valuestring) != next[id] ||
                strlen(p->valuestring) != PAD || p->valuestring[0] != 'a' + id ||
                p->valuestring[PAD - 1] != 'a' + id)
                bad++;
            else
                next[id]++;
        }
        cJSON_Delete(j);
    }
    CU_ASSERT_EQUAL(bad, 0);
    for (int i = 0; i < WRITERS; i++) CU_ASSERT_EQUAL(next[i], RECORDS);
    free(out);
}

static CU_TestInfo log_tests[] = {
    {"text shape", test_text_shape},
    {"text escaping", test_text_escaping},
    {"json shape", test_json_shape},
    {"json escaping", test_json_escaping},
    {"levels filter", test_levels},
    {"level and format names", test_parse_names},
    {"errno preserved", test_errno_kept},
    {"concurrent writers keep lines whole", test_concurrent_lines},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"log", NULL, NULL, NULL, NULL, log_tests},
    CU_SUITE_INFO_NULL,
};

CSL_TEST_MAIN(suites)
