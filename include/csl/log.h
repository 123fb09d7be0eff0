/* log.h — leveled logging as text or JSON lines, to stderr by default.
 *
 * One process-wide logger, configured once at start-up (csl_log_setup) and
 * then used from any thread: each record is formatted into a local buffer and
 * written with a single write(2), so lines from threads never interleave.
 *
 * Text:  2026-11-26T14:21:26.123Z INFO  mockcloud: listening addr=127.0.0.1:8080
 * JSON:  {"ts":"2026-11-26T14:21:26.123Z","level":"info","logger":"mockcloud",
 *         "msg":"listening","addr":"127.0.0.1:8080"}
 *
 * Key/value fields are passed as alternating const char* strings ending with
 * NULL, so structured fields survive into JSON without a format string. */
#ifndef CSL_LOG_H
#define CSL_LOG_H

#include <stdbool.h>

typedef enum {
    CSL_LOG_DEBUG = 0,
    CSL_LOG_INFO,
    CSL_LOG_WARN,
    CSL_LOG_ERROR,
} csl_log_level;

typedef enum {
    CSL_LOG_TEXT = 0,
    CSL_LOG_JSON,
} csl_log_format;

/* API */

/* Sets the program name, the minimum level, the format and the output file
 * descriptor (2 for stderr). May be called again; not concurrently with
 * logging. */
void csl_log_setup(const char *logger, csl_log_level min, csl_log_format fmt, int fd);

/* Parses "debug" | "info" | "warn" | "error" (and "warning"). Returns false,
 * leaving *out untouched, on an unknown name. */
bool csl_log_level_parse(const char *s, csl_log_level *out);
/* Parses "text" | "json". */
bool csl_log_format_parse(const char *s, csl_log_format *out);
bool csl_log_enabled(csl_log_level level);

/* Logs msg with key/value string pairs: csl_log(CSL_LOG_INFO, "listening",
 * "addr", addr, NULL). A NULL value is written as null / an empty value. */
void csl_log(csl_log_level level, const char *msg, ...) __attribute__((sentinel));

/* printf-style message without fields. */
void csl_logf(csl_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define csl_debugf(...) csl_logf(CSL_LOG_DEBUG, __VA_ARGS__)
#define csl_infof(...) csl_logf(CSL_LOG_INFO, __VA_ARGS__)
#define csl_warnf(...) csl_logf(CSL_LOG_WARN, __VA_ARGS__)
#define csl_errorf(...) csl_logf(CSL_LOG_ERROR, __VA_ARGS__)

#endif
