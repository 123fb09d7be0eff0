/* log.c — leveled text / JSON-lines logging (see csl/log.h).
 *
 * Design idea: a record is built completely in a private csl_buf and leaves
 * the process in one write(2) made under a mutex, so records from different
 * threads can never interleave, however long they are. Everything a record
 * carries is escaped so that one record is always exactly one line. */
#include "csl/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "csl/buf.h"
#include "csl/clock.h"

static struct {
    char logger[64];
    csl_log_level min;
    csl_log_format fmt;
    int fd;
} cfg = {"", CSL_LOG_INFO, CSL_LOG_TEXT, 2};

static pthread_mutex_t write_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const text_names[] = {"DEBUG", "INFO ", "WARN ", "ERROR"};
static const char *const json_names[] = {"debug", "info", "warn", "error"};

void csl_log_setup(const char *logger, csl_log_level min, csl_log_format fmt, int fd)
{
    snprintf(cfg.logger, sizeof cfg.logger, "%s", logger ? logger : "");
    cfg.min = min;
    cfg.fmt = fmt;
    cfg.fd = fd;
}

bool csl_log_level_parse(const char *s, csl_log_level *out)
{
    static const struct {
        const char *name;
        csl_log_level level;
    } names[] = {{"debug", CSL_LOG_DEBUG},
                 {"info", CSL_LOG_INFO},
                 {"warn", CSL_LOG_WARN},
                 {"warning", CSL_LOG_WARN},
                 {"error", CSL_LOG_ERROR}};
    if (!s) return false;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcasecmp(s, names[i].name) == 0) {
            *out = names[i].level;
            return true;
        }
    }
    return false;
}

bool csl_log_format_parse(const char *s, csl_log_format *out)
{
    if (!s) return false;
    if (strcasecmp(s, "text") == 0)
        *out = CSL_LOG_TEXT;
    else if (strcasecmp(s, "json") == 0)
        *out = CSL_LOG_JSON;
    else
        return false;
    return true;
}

bool csl_log_enabled(csl_log_level level)
{
    return level >= cfg.min;
}

/* ---------------------------------------------------------------- escaping */

/* Length of the well-formed UTF-8 sequence at p (1..4), or 0 when the bytes
 * there are not one (stray continuation, overlong, surrogate, truncated). */
static size_t utf8_len(const unsigned char *p)
{
    unsigned c = p[0];
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf) return (p[1] & 0xc0) == 0x80 ? 2 : 0;
    if (c >= 0xe0 && c <= 0xef) {
        unsigned lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
        if (p[1] < lo || p[1] > hi) return 0;
        return (p[2] & 0xc0) == 0x80 ? 3 : 0;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        unsigned lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
        if (p[1] < lo || p[1] > hi) return 0;
        if ((p[2] & 0xc0) != 0x80 || (p[3] & 0xc0) != 0x80) return 0;
        return 4;
    }
    return 0;
}

/* Appends s escaped for a JSON string (without the quotes). Valid UTF-8 goes
 * through as is; invalid bytes become U+FFFD so the line stays valid JSON. */
static void json_escape(csl_buf *b, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned char c = *p;
        switch (c) {
        case '"':
            csl_buf_puts(b, "\\\"");
            p++;
            continue;
        case '\\':
            csl_buf_puts(b, "\\\\");
            p++;
            continue;
        case '\n':
            csl_buf_puts(b, "\\n");
            p++;
            continue;
        case '\r':
            csl_buf_puts(b, "\\r");
            p++;
            continue;
        case '\t':
            csl_buf_puts(b, "\\t");
            p++;
            continue;
        case '\b':
            csl_buf_puts(b, "\\b");
            p++;
            continue;
        case '\f':
            csl_buf_puts(b, "\\f");
            p++;
            continue;
        default:
            break;
        }
        if (c < 0x20 || c == 0x7f) {
            csl_buf_printf(b, "\\u%04x", c);
            p++;
            continue;
        }
        size_t n = utf8_len(p);
        if (n == 0) {
            csl_buf_puts(b, "\\ufffd");
            p++;
        } else {
            csl_buf_append(b, p, n);
            p += n;
        }
    }
}

/* Text values are bare when they are one plain word, else quoted with
 * backslash escapes ("logfmt" style), so a reader can split on spaces. */
static bool text_needs_quotes(const char *s)
{
    if (!*s) return true;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= ' ' || *p == '"' || *p == '=' || *p == '\\' || *p == 0x7f) return true;
    return false;
}

/* Control characters are escaped so a text record stays on one line. */
static void text_escape(csl_buf *b, const char *s, bool quoted)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        if (c == '\n')
            csl_buf_puts(b, "\\n");
        else if (c == '\r')
            csl_buf_puts(b, "\\r");
        else if (c == '\t')
            csl_buf_puts(b, quoted ? "\\t" : "\t");
        else if (c < 0x20 || c == 0x7f)
            csl_buf_printf(b, "\\x%02x", c);
        else if (quoted && (c == '"' || c == '\\')) {
            csl_buf_putc(b, '\\');
            csl_buf_putc(b, (char)c);
        } else
            csl_buf_putc(b, (char)c);
    }
}

static void text_value(csl_buf *b, const char *v)
{
    if (!v) return;
    if (!text_needs_quotes(v)) {
        text_escape(b, v, false);
        return;
    }
    csl_buf_putc(b, '"');
    text_escape(b, v, true);
    csl_buf_putc(b, '"');
}

/* ---------------------------------------------------------------- records */

static void record_open(csl_buf *b, csl_log_level level, const char *msg)
{
    char ts[CSL_RFC3339_LEN];
    csl_rfc3339_ms(csl_wall_ms(), ts);
    if (level < CSL_LOG_DEBUG || level > CSL_LOG_ERROR) level = CSL_LOG_ERROR;
    if (cfg.fmt == CSL_LOG_JSON) {
        csl_buf_printf(b, "{\"ts\":\"%s\",\"level\":\"%s\"", ts, json_names[level]);
        if (cfg.logger[0]) {
            csl_buf_puts(b, ",\"logger\":\"");
            json_escape(b, cfg.logger);
            csl_buf_putc(b, '"');
        }
        csl_buf_puts(b, ",\"msg\":\"");
        json_escape(b, msg ? msg : "");
        csl_buf_putc(b, '"');
    } else {
        csl_buf_printf(b, "%s %s ", ts, text_names[level]);
        if (cfg.logger[0]) {
            text_escape(b, cfg.logger, false);
            csl_buf_puts(b, ": ");
        }
        text_escape(b, msg ? msg : "", false);
    }
}

static void record_field(csl_buf *b, const char *key, const char *value)
{
    if (cfg.fmt == CSL_LOG_JSON) {
        csl_buf_puts(b, ",\"");
        json_escape(b, key);
        csl_buf_puts(b, "\":");
        if (!value) {
            csl_buf_puts(b, "null");
            return;
        }
        csl_buf_putc(b, '"');
        json_escape(b, value);
        csl_buf_putc(b, '"');
    } else {
        csl_buf_putc(b, ' ');
        text_escape(b, key, false);
        csl_buf_putc(b, '=');
        text_value(b, value);
    }
}

/* Writes the whole record; a short write (signal, full pipe) is resumed under
 * the same lock so the line still arrives in one piece. */
static void record_emit(csl_buf *b)
{
    csl_buf_puts(b, cfg.fmt == CSL_LOG_JSON ? "}\n" : "\n");
    const char *p = csl_buf_str(b);
    size_t len = b->len;
    static const char oom_line[] = "log: out of memory formatting a record\n";
    if (b->oom) {
        p = oom_line;
        len = sizeof oom_line - 1;
    }
    pthread_mutex_lock(&write_lock);
    while (len > 0) {
        ssize_t n = write(cfg.fd, p, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            break;
        }
        p += n;
        len -= (size_t)n;
    }
    pthread_mutex_unlock(&write_lock);
}

void csl_log(csl_log_level level, const char *msg, ...)
{
    if (!csl_log_enabled(level)) return;
    int saved_errno = errno;
    csl_buf b = CSL_BUF_INIT;
    record_open(&b, level, msg);
    va_list ap;
    va_start(ap, msg);
    const char *key;
    while ((key = va_arg(ap, const char *)) != NULL) {
        const char *value = va_arg(ap, const char *);
        record_field(&b, key, value);
    }
    va_end(ap);
    record_emit(&b);
    csl_buf_free(&b);
    errno = saved_errno;
}

void csl_logf(csl_log_level level, const char *fmt, ...)
{
    if (!csl_log_enabled(level)) return;
    int saved_errno = errno;
    csl_buf msg = CSL_BUF_INIT, b = CSL_BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    csl_buf_vprintf(&msg, fmt, ap);
    va_end(ap);
    record_open(&b, level, csl_buf_str(&msg));
    if (msg.oom) b.oom = true;
    record_emit(&b);
    csl_buf_free(&msg);
    csl_buf_free(&b);
    errno = saved_errno;
}
