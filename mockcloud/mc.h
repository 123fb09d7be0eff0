/* mc.h — small types shared by mockcloud's modules.
 *
 * A decoded request's query arguments travel as an mc_kv array (repeated
 * keys kept in order: ?tag=a=1&tag=b=2); an API call's outcome is an
 * mc_reply: the HTTP status and the JSON body to send, either as a cJSON
 * tree or, on hot read paths, as text already serialised (no tree to build,
 * print and free per request). */
#ifndef MC_H
#define MC_H

#include <stddef.h>
#include <cjson/cJSON.h>

typedef struct mc_kv {
    const char *key;
    const char *value;
} mc_kv;

typedef struct mc_reply {
    int status;        /* HTTP status */
    cJSON *body;       /* owned by whoever holds the reply; NULL for no body */
    char location[96]; /* "" or a Location header value (/v1/operations/op-…) */
    /* When set, the body to send: JSON text (malloc'd, NUL-terminated,
     * text_len bytes), owned like body. body is then NULL unless
     * mc_reply_json_body parsed the text into it. */
    char *text;
    size_t text_len;
} mc_reply;

/* API */
/* A reply {"error":{"code":code,"message":...}} with the given status. */
mc_reply mc_reply_error(int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Takes ownership of body. */
mc_reply mc_reply_json(int status, cJSON *body);
/* Takes ownership of text (malloc'd JSON text of len bytes, NUL-terminated). */
mc_reply mc_reply_text(int status, char *text, size_t len);
/* The reply's body as a tree: body itself, or else text parsed on the first
 * call and kept in body (freed with the reply). NULL when the reply has no
 * body, or the text does not parse, or memory runs out. */
const cJSON *mc_reply_json_body(mc_reply *r);
/* Frees body and text; the reply is left empty. */
void mc_reply_free(mc_reply *r);

/* Shell-style match of a request path: '*' matches within one segment,
 * '**' across segments, '?' one character; everything else literally. */
int mc_glob_match(const char *pattern, const char *s);

#endif
