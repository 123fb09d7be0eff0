/* buf.c — growable NUL-terminated byte buffer (see csl/buf.h). */
#include "csl/buf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void csl_buf_init(csl_buf *b)
{
    *b = (csl_buf)CSL_BUF_INIT;
}

void csl_buf_free(csl_buf *b)
{
    free(b->data);
    csl_buf_init(b);
}

void csl_buf_reset(csl_buf *b)
{
    b->len = 0;
    b->oom = false;
    if (b->data) b->data[0] = '\0';
}

/* Makes room for extra more bytes plus the NUL, growing geometrically. */
static bool buf_reserve(csl_buf *b, size_t extra)
{
    if (b->oom) return false;
    if (extra > SIZE_MAX - b->len - 1) goto oom;
    size_t need = b->len + extra + 1;
    if (need <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = realloc(b->data, cap);
    if (!p) goto oom;
    b->data = p;
    b->cap = cap;
    return true;
oom:
    b->oom = true;
    return false;
}

bool csl_buf_append(csl_buf *b, const void *data, size_t len)
{
    if (!buf_reserve(b, len)) return false;
    if (len) memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return true;
}

bool csl_buf_puts(csl_buf *b, const char *s)
{
    return csl_buf_append(b, s, strlen(s));
}

bool csl_buf_putc(csl_buf *b, char c)
{
    return csl_buf_append(b, &c, 1);
}

bool csl_buf_vprintf(csl_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0 || !buf_reserve(b, (size_t)n)) return false;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return true;
}

bool csl_buf_printf(csl_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    bool ok = csl_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return ok;
}

const char *csl_buf_str(const csl_buf *b)
{
    return b->data ? b->data : "";
}

char *csl_buf_steal(csl_buf *b)
{
    char *p = NULL;
    if (!b->oom) p = b->data ? b->data : strdup("");
    else free(b->data);
    csl_buf_init(b);
    return p;
}
