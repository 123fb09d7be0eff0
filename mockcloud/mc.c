/* mc.c — replies and path globs shared by mockcloud's modules (see mc.h). */
#include "mc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

mc_reply mc_reply_json(int status, cJSON *body)
{
    mc_reply r = {.status = status, .body = body, .location = ""};
    return r;
}

mc_reply mc_reply_error(int status, const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cJSON *body = cJSON_CreateObject();
    cJSON *err = cJSON_AddObjectToObject(body, "error");
    cJSON_AddStringToObject(err, "code", code);
    cJSON_AddStringToObject(err, "message", msg);
    return mc_reply_json(status, body);
}

mc_reply mc_reply_text(int status, char *text, size_t len)
{
    mc_reply r = {.status = status, .location = "", .text = text, .text_len = len};
    return r;
}

const cJSON *mc_reply_json_body(mc_reply *r)
{
    if (!r->body && r->text) r->body = cJSON_ParseWithLength(r->text, r->text_len);
    return r->body;
}

void mc_reply_free(mc_reply *r)
{
    cJSON_Delete(r->body);
    r->body = NULL;
    free(r->text);
    r->text = NULL;
    r->text_len = 0;
}

/* Iterative glob with one backtrack point per star kind: '*' may not cross
 * '/', '**' may. Patterns are short, so the quadratic worst case is fine. */
int mc_glob_match(const char *p, const char *s)
{
    const char *star_p = NULL, *star_s = NULL;
    int star_deep = 0;
    while (*s) {
        if (p[0] == '*') {
            star_deep = p[1] == '*';
            p += star_deep ? 2 : 1;
            star_p = p;
            star_s = s;
            continue;
        }
        if (*p == '?' ? *s != '/' : *p == *s) {
            p++;
            s++;
            continue;
        }
        /* Mismatch: let the last star swallow one more character. */
        if (star_p && (star_deep || *star_s != '/')) {
            p = star_p;
            s = ++star_s;
            continue;
        }
        return 0;
    }
    while (*p == '*') p++;
    return *p == '\0';
}
