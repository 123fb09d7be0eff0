/* tokens.h — the bearer tokens the /v1 API accepts, each read-write or
 * read-only, changeable at run time.
 *
 * A table behind a read-write lock: every /v1 request reads it, the control
 * API rarely writes it. The set present at start-up is remembered as the
 * baseline that /_mock/reset restores. Auth is on when the baseline is not
 * empty or a token has been added since; with auth off every request is
 * accepted. Thread-safe. */
#ifndef MC_TOKENS_H
#define MC_TOKENS_H

#include <stdbool.h>
#include <stddef.h>
#include <cjson/cJSON.h>

#define MC_TOKEN_MAX 256 /* bytes, excluding the NUL */

typedef enum {
    MC_ACCESS_NONE = 0, /* unknown token */
    MC_ACCESS_READ_ONLY,
    MC_ACCESS_READ_WRITE,
} mc_access;

typedef struct mc_tokens mc_tokens;

/* API */
/* NULL on allocation failure. */
mc_tokens *mc_tokens_new(void);
void mc_tokens_free(mc_tokens *t);

/* "read-write" | "rw" | "read-only" | "ro". Returns 0, or -1 leaving *out
 * untouched. */
int mc_access_parse(const char *s, mc_access *out);
/* "read-write" / "read-only" / "none". */
const char *mc_access_name(mc_access a);
/* A token is 1..MC_TOKEN_MAX printable ASCII characters without spaces.
 * Returns NULL when valid, else a reason ("contains a space"). */
const char *mc_token_invalid(const char *token);

/* Adds token, or changes its access when present. Returns 1 when added,
 * 0 when changed, -1 on allocation failure or an invalid token. Turns auth
 * on. */
int mc_tokens_put(mc_tokens *t, const char *token, mc_access a);
/* Parses a --token value: "T" (read-write), "T:ro" or "T:rw", and adds it.
 * Returns 0, or -1 with a reason in err. */
int mc_tokens_put_flag(mc_tokens *t, const char *arg, char *err, size_t errsz);
/* Reads "TOKEN [rw|ro]" lines (default rw; '#' comments and blank lines
 * skipped) and adds them. Returns 0, or -1 with err as "FILE:LINE: reason"
 * (or "FILE: reason" when unreadable); on error nothing is added. */
int mc_tokens_load_file(mc_tokens *t, const char *path, char *err, size_t errsz);
/* 0, or -1 when no such token. */
int mc_tokens_remove(mc_tokens *t, const char *token);
/* The token's access; MC_ACCESS_NONE when unknown. */
mc_access mc_tokens_lookup(mc_tokens *t, const char *token);
bool mc_tokens_auth_on(mc_tokens *t);
/* Makes the current set the baseline (call once configuration is loaded). */
int mc_tokens_set_baseline(mc_tokens *t);
/* Back to the baseline set and auth state. */
void mc_tokens_restore(mc_tokens *t);
/* {"authEnabled":bool,"items":[{"token","access"}…]}, in insertion order.
 * Caller owns; NULL on allocation failure. */
cJSON *mc_tokens_list(mc_tokens *t);
size_t mc_tokens_count(mc_tokens *t);

#endif
