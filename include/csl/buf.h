/* buf.h — a growable byte buffer that always stays NUL-terminated.
 *
 * The one string builder of the project: JSON bodies, log lines, metric
 * exposition and file contents are all assembled in a csl_buf. A buffer whose
 * allocation failed remembers it (`oom`), every later append is a no-op, and
 * the caller checks once at the end, so building code stays linear. */
#ifndef CSL_BUF_H
#define CSL_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct csl_buf {
    char *data;   /* NUL-terminated; NULL until the first append */
    size_t len;   /* bytes used, not counting the NUL */
    size_t cap;   /* bytes allocated */
    bool oom;     /* an allocation failed; content is truncated */
} csl_buf;

#define CSL_BUF_INIT {NULL, 0, 0, false}

/* API */
void csl_buf_init(csl_buf *b);
/* Frees the storage and leaves an empty, reusable buffer. */
void csl_buf_free(csl_buf *b);
/* Empties the buffer, keeping its storage. */
void csl_buf_reset(csl_buf *b);
/* Appends; on allocation failure sets b->oom and returns false. */
bool csl_buf_append(csl_buf *b, const void *data, size_t len);
bool csl_buf_puts(csl_buf *b, const char *s);
bool csl_buf_putc(csl_buf *b, char c);
bool csl_buf_printf(csl_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool csl_buf_vprintf(csl_buf *b, const char *fmt, va_list ap);
/* Returns the content ("" when empty, never NULL). */
const char *csl_buf_str(const csl_buf *b);
/* Hands the malloc'd content to the caller (NULL on oom) and resets b. */
char *csl_buf_steal(csl_buf *b);

#endif
