/* progress.c — terminal progress for a run: a live line on a TTY, plain
 * lines elsewhere.
 *
 * One idea: every event is formatted into one buffer and written with one
 * fputs+fflush under a lock, so scenario threads never interleave; on a
 * TTY the live line is erased ("\r\033[K") before a permanent line is
 * printed and redrawn after it. */
#include "progress.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include "csl/buf.h"

struct sr_progress {
    FILE *out;
    bool tty;
    size_t total, started, finished, failed;
    char current[160]; /* the last thing that happened, for the live line */
    pthread_mutex_t mu;
};

sr_progress *sr_progress_new(FILE *out, bool tty, size_t total)
{
    sr_progress *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->out = out ? out : stderr;
    p->tty = tty;
    p->total = total;
    pthread_mutex_init(&p->mu, NULL);
    return p;
}

void sr_progress_free(sr_progress *p)
{
    if (!p) return;
    pthread_mutex_destroy(&p->mu);
    free(p);
}

static const char *word(sr_status st)
{
    switch (st) {
    case SR_PASS: return "PASS";
    case SR_FAIL: return "FAIL";
    case SR_ERROR: return "ERROR";
    default: return "SKIP";
    }
}

/* Writes line (may be NULL: only the live line) under the lock. */
static void emit(sr_progress *p, const char *line)
{
    csl_buf b = CSL_BUF_INIT;
    if (p->tty) csl_buf_puts(&b, "\r\033[K");
    if (line) csl_buf_printf(&b, "%s\n", line);
    if (p->tty) {
        csl_buf_printf(&b, "[%zu/%zu done, %zu running, %zu failed] %s", p->finished,
                       p->total ? p->total : p->started, p->started - p->finished, p->failed,
                       p->current);
    }
    fputs(csl_buf_str(&b), p->out);
    fflush(p->out);
    csl_buf_free(&b);
}

void sr_progress_scenario_start(sr_progress *p, const char *scenario, const char *ns)
{
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->started++;
    snprintf(p->current, sizeof p->current, "%s: started", scenario);
    char line[400];
    snprintf(line, sizeof line, "START %s%s%s%s", scenario, ns ? " (namespace " : "", ns ? ns : "",
             ns ? ")" : "");
    emit(p, p->tty ? NULL : line);
    pthread_mutex_unlock(&p->mu);
}

/* The first line of s, cut at max bytes. */
static void first_line(char *out, size_t sz, const char *s)
{
    if (!s) s = "";
    size_t n = strcspn(s, "\n");
    if (n >= sz) n = sz - 1;
    memcpy(out, s, n);
    out[n] = 0;
}

void sr_progress_step(sr_progress *p, const char *scenario, const char *step, sr_status st,
                      double duration_s, const char *message)
{
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    snprintf(p->current, sizeof p->current, "%s: %s %s", scenario, step, word(st));
    char m[300], line[1200];
    first_line(m, sizeof m, message);
    snprintf(line, sizeof line, "  %-5s %s / %s (%.1fs)%s%s", word(st), scenario, step, duration_s,
             m[0] ? ": " : "", m);
    /* A failure shows a few more lines of its message (what was last
     * seen); the report has all of it. */
    bool bad = st == SR_FAIL || st == SR_ERROR;
    size_t len = strlen(line);
    const char *rest = message ? strchr(message, '\n') : NULL;
    for (int k = 0; bad && rest && k < 4 && len + 8 < sizeof line; k++) {
        rest++;
        size_t n = strcspn(rest, "\n");
        len += (size_t)snprintf(line + len, sizeof line - len, "\n        %.*s", (int)n, rest);
        rest = strchr(rest, '\n');
    }
    /* On a TTY only failures get a permanent line; passes update the
     * live line. */
    emit(p, (!p->tty || bad) ? line : NULL);
    pthread_mutex_unlock(&p->mu);
}

void sr_progress_scenario_end(sr_progress *p, const char *scenario, sr_status st, double real_s,
                              const char *message)
{
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->finished++;
    if (st == SR_FAIL || st == SR_ERROR) p->failed++;
    snprintf(p->current, sizeof p->current, "%s: %s", scenario, word(st));
    char m[300], line[600];
    first_line(m, sizeof m, message);
    snprintf(line, sizeof line, "%-5s %s (%.1fs)%s%s", word(st), scenario, real_s, m[0] ? ": " : "",
             m);
    emit(p, line);
    pthread_mutex_unlock(&p->mu);
}

void sr_progress_note(sr_progress *p, const char *fmt, ...)
{
    if (!p) return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&p->mu);
    emit(p, line);
    pthread_mutex_unlock(&p->mu);
}

void sr_progress_done(sr_progress *p)
{
    if (!p || !p->tty) return;
    pthread_mutex_lock(&p->mu);
    fputs("\r\033[K", p->out);
    fflush(p->out);
    pthread_mutex_unlock(&p->mu);
}
