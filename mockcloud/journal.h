/* journal.h — the request journal: every request mockcloud answered (or
 * refused to), newest last, in a fixed-size ring.
 *
 * Entries are fixed-size records (long paths and keys are truncated), so
 * adding never allocates and the journal's memory is cap × record size.
 * When full, the oldest entry is overwritten and counted as dropped.
 * Sequence numbers start at 1 and never repeat, so a reader can poll with
 * since=<last seq>. Thread-safe.
 *
 * Entry JSON: {"seq", "time" (RFC 3339 UTC, ms), "method", "path", "op",
 * "status" (0: no reply — reset, closed, hung), "latencyMs" (float),
 * "idempotencyKey", "fault", "rules"}. Every entry has every key: op,
 * idempotencyKey, fault and rules are null when empty, so a reader never
 * has to tell a missing key from an empty one. Truncated strings are cut
 * at a UTF-8 character boundary (mc_journal_copy). */
#ifndef MC_JOURNAL_H
#define MC_JOURNAL_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include "mc.h"

typedef struct mc_journal mc_journal;

#define MC_JOURNAL_LIMIT_DEFAULT 1000 /* a query's limit when none is given */
#define MC_JOURNAL_LIMIT_MAX 10000    /* the largest limit a query accepts */

typedef struct mc_journal_entry {
    uint64_t seq;    /* assigned by mc_journal_add */
    int64_t time_ms; /* wall clock when the request arrived */
    char method[8];
    char path[160];
    char op[32];        /* operation name or "" */
    int status;         /* 0 when reset/closed/hung */
    int64_t latency_us; /* arrival to end */
    char idem_key[96];  /* Idempotency-Key or "" */
    char fault[16];     /* injected effect type or "" */
    char rules[64];     /* ids of fired rules or "" */
} mc_journal_entry;

typedef struct mc_journal_filter {
    const char *method; /* exact, case-insensitive; NULL any */
    const char *path;   /* glob (mc_glob_match); NULL any */
    const char *op;     /* exact; NULL any */
    const char *key;    /* exact idempotency key; NULL any */
    const char *fault;  /* exact effect type, "any" for any injected,
                           "none" for none injected; NULL any */
    int status;         /* exact status; 0 any */
    int status_class;   /* 2 for 2xx, 4 for 4xx …; 0 any */
    uint64_t since_seq; /* entries with seq > since_seq */
    int64_t since_ms;   /* entries with time_ms >= since_ms; 0 any */
    size_t limit;       /* newest `limit` matches; 0 → 1000, capped at 10000 */
} mc_journal_filter;

/* API */
/* cap: entries kept (≥ 1). NULL on allocation failure. */
mc_journal *mc_journal_new(size_t cap);
void mc_journal_free(mc_journal *j);
/* Copies e into the ring (e->seq is ignored) and returns the seq given to
 * it. Every string field is NUL-terminated in the copy whatever e holds;
 * fill them with MC_JOURNAL_SET to truncate long values cleanly. */
uint64_t mc_journal_add(mc_journal *j, const mc_journal_entry *e);
/* Copies src (NULL → "") into dst, truncated at a UTF-8 character
 * boundary to fit dstsz (> 0) with its NUL. */
void mc_journal_copy(char *dst, size_t dstsz, const char *src);
#define MC_JOURNAL_SET(field, src) mc_journal_copy((field), sizeof(field), (src))
/* Fills *f from query arguments method, path, op, key, fault, status
 * ("503" or "5xx"), since (a seq), sinceTime (RFC 3339), limit (1..10000).
 * Returns 0, or -1 with err naming the argument ("limit: \"0\" must be an
 * integer 1..10000"; unknown arguments are all named: "unknown arguments
 * \"a\", \"b\": use …"); an argument given twice or with an empty value
 * is refused too. On error *f is untouched. Pointers in *f point into q. */
int mc_journal_filter_parse(mc_journal_filter *f, const mc_kv *q, size_t n, char *err,
                            size_t errsz);
/* {"items":[entry…], "matched": N, "dropped": N, "lastSeq": N}: the
 * newest `limit` matches, oldest first; matched counts every match (limit
 * ignored); dropped counts entries overwritten since creation or the last
 * clear; lastSeq is the newest seq ever given (0 when none), whatever the
 * filter. To poll, pass since = the previous answer's lastSeq; when
 * matched > limit, the matched − limit oldest matches were not shown.
 * NULL on allocation failure. Caller owns. */
cJSON *mc_journal_query(mc_journal *j, const mc_journal_filter *f);
/* Number of entries matching f (limit ignored). */
size_t mc_journal_count(mc_journal *j, const mc_journal_filter *f);
/* Entries held now (≤ cap). */
size_t mc_journal_len(mc_journal *j);
/* Empties the ring and zeroes dropped; seqs go on from where they were, so
 * a poller's since= stays valid. */
void mc_journal_clear(mc_journal *j);

#endif
