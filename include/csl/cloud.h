/* cloud.h — the client of the cloud REST API (mockcloud's /v1, see
 * docs/mockcloud.md): typed calls, parsed replies, and errors a reconciler
 * can switch on.
 *
 * One idea: every call returns a csl_cloud_code, a small enum that already
 * says what to do next — OK, NOT_FOUND, RETRYABLE (back off), THROTTLED
 * (wait retry_after_s), AUTH (re-read credentials, retry slowly), CONFLICT,
 * INVALID (wait for the spec to change), CAPACITY, PERMANENT — and fills a
 * csl_cloud_error with the details a person needs (HTTP status, the cloud's
 * code and message, libcurl's text). Replies are decoded into structs; a
 * reply that is not what the API promises is an error of that call, never a
 * crash.
 *
 * A csl_cloud is shared by every thread of a program: it lends one curl easy
 * handle from a pool per call (so keep-alive connections are reused) and
 * shares the DNS cache between them. The bearer token may be replaced at
 * any time (csl_cloud_set_token). See docs/lib/cloud.md, which also explains
 * which requests may be re-sent silently by libcurl and why that is safe.
 *
 * Ownership: results (instances, snapshots, lists) are filled into structs
 * the caller provides and owns; free them with the matching _free function,
 * which frees the contents and zeroes the struct (a zeroed struct is fine to
 * free). Arguments are borrowed for the call. */
#ifndef CSL_CLOUD_H
#define CSL_CLOUD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include "csl/metrics.h"

/* ---------------------------------------------------------------- errors */

typedef enum {
    CSL_CLOUD_OK = 0,
    CSL_CLOUD_NOT_FOUND, /* 404 from the cloud (its JSON error): the thing is gone */
    CSL_CLOUD_RETRYABLE, /* 5xx, 408, timeout, refused/reset connection, empty or
                            malformed reply: try again with back-off */
    CSL_CLOUD_THROTTLED, /* 429: wait retry_after_s (0 when the cloud did not say) */
    CSL_CLOUD_AUTH,      /* 401 (token missing or unknown) or 403 (not allowed): status says */
    CSL_CLOUD_CONFLICT,  /* 409: IdempotencyMismatch, InvalidState, …: cloud_code says */
    CSL_CLOUD_INVALID,   /* 400/422, or a call refused before sending: permanent for these
                            arguments (InvalidZone, InvalidImage, DiskShrinkNotAllowed) */
    CSL_CLOUD_CAPACITY,  /* InsufficientCapacity: the zone is full */
    CSL_CLOUD_PERMANENT, /* anything else (405, 413, a redirect, a 404 not from the cloud) */
} csl_cloud_code;

/* Where a failure came from, for condition reasons and messages. */
typedef enum {
    CSL_CLOUD_CAUSE_NONE = 0,  /* success */
    CSL_CLOUD_CAUSE_HTTP,      /* the cloud answered with an error status */
    CSL_CLOUD_CAUSE_TIMEOUT,   /* no complete reply within the client's timeout */
    CSL_CLOUD_CAUSE_CONNECT,   /* could not connect: refused, unreachable, DNS */
    CSL_CLOUD_CAUSE_TRANSPORT, /* connection reset, closed without a reply, send/recv error */
    CSL_CLOUD_CAUSE_DECODE,    /* a reply we could not use: bad JSON, wrong shape, too large */
    CSL_CLOUD_CAUSE_REQUEST,   /* refused before sending: bad arguments, out of memory */
} csl_cloud_cause;

/* The outcome of one call. On success code is OK, status the HTTP status
 * (200 vs 202 tells an idempotent replay from a fresh create) and operation
 * the id behind a 202 ("op-…", from the Location header; "" when none). */
typedef struct csl_cloud_error {
    csl_cloud_code code;
    csl_cloud_cause cause;
    int status;           /* HTTP status; 0 when no reply came */
    char op[32];          /* "CreateInstance", "GetInstance", … (mockcloud's names) */
    char cloud_code[64];  /* the cloud's error.code ("InvalidZone"); "" when none */
    char message[512];    /* the cloud's error.message, or ours for DECODE/REQUEST */
    char curl_error[256]; /* libcurl's text for TIMEOUT/CONNECT/TRANSPORT; else "" */
    int retry_after_s;    /* Retry-After in seconds (on any status); 0 when absent */
    char operation[64];   /* on success: the operation id from Location, or "" */
} csl_cloud_error;

/* ---------------------------------------------------------------- data */

typedef enum {
    CSL_INSTANCE_UNKNOWN = 0, /* a state this client does not know: see state_raw */
    CSL_INSTANCE_PENDING,
    CSL_INSTANCE_RUNNING,
    CSL_INSTANCE_RESIZING,
    CSL_INSTANCE_STOPPING,
    CSL_INSTANCE_STOPPED,
    CSL_INSTANCE_STARTING,
    CSL_INSTANCE_REBOOTING,
    CSL_INSTANCE_DELETING,
    CSL_INSTANCE_CRASHED,
    CSL_INSTANCE_DELETED, /* only in an idempotent replay after the instance is gone */
} csl_instance_state;

typedef struct csl_cloud_tag {
    char *key;
    char *value;
} csl_cloud_tag;

/* A key/value pair the caller passes in (tags of a create, tag filters). */
typedef struct csl_cloud_kv {
    const char *key;
    const char *value;
} csl_cloud_kv;

typedef struct csl_cloud_instance {
    char *id;
    char *name;
    csl_instance_state state;
    char *state_raw; /* as the cloud wrote it */
    int cpu;
    int64_t memory_mib;
    int64_t disk_gib;
    char *image;
    char *zone;
    char *network_type; /* "standard" when the reply had none */
    int ip_count;       /* 0 when the reply had none */
    char **ip_addresses;
    size_t n_ip_addresses;
    csl_cloud_tag *tags;
    size_t n_tags;
    int64_t created_ms; /* epoch ms; 0 when absent */
    int64_t updated_ms;
} csl_cloud_instance;

typedef struct csl_cloud_instance_list {
    csl_cloud_instance *items;
    size_t n;
} csl_cloud_instance_list;

typedef enum {
    CSL_SNAPSHOT_UNKNOWN = 0,
    CSL_SNAPSHOT_CREATING,
    CSL_SNAPSHOT_AVAILABLE,
    CSL_SNAPSHOT_DELETED, /* only in an idempotent replay after it is gone */
} csl_snapshot_state;

typedef struct csl_cloud_snapshot {
    char *id;
    char *instance_id;
    char *name;
    csl_snapshot_state state;
    char *state_raw;
    int64_t size_gib;
    csl_cloud_tag *tags;
    size_t n_tags;
    int64_t created_ms;
} csl_cloud_snapshot;

typedef struct csl_cloud_snapshot_list {
    csl_cloud_snapshot *items;
    size_t n;
} csl_cloud_snapshot_list;

/* What to create. name, image and zone are required; the body is built in
 * a fixed field order so the same spec always gives the same body (the
 * cloud compares an idempotent replay's body with the first one: send the
 * same spec with the same key, optional fields included or omitted alike). */
typedef struct csl_cloud_instance_spec {
    const char *name;
    int cpu;
    int64_t memory_mib;
    int64_t disk_gib;
    const char *image;
    const char *zone;
    const char *network_type; /* NULL: omitted (the cloud's default, standard) */
    int ip_count;             /* 0: omitted (the cloud's default, 1) */
    const csl_cloud_kv *tags;
    size_t n_tags;
} csl_cloud_instance_spec;

/* A resize: 0 leaves that dimension as it is; at least one must be set. */
typedef struct csl_cloud_resize {
    int cpu;
    int64_t memory_mib;
    int64_t disk_gib;
} csl_cloud_resize;

typedef enum {
    CSL_CLOUD_START = 0,
    CSL_CLOUD_STOP,
    CSL_CLOUD_REBOOT,
} csl_cloud_action;

/* Filters of a list; every field optional (a zeroed struct lists all). */
typedef struct csl_cloud_list_filter {
    const csl_cloud_kv *tags; /* all must match; a key may not contain '=' */
    size_t n_tags;
    const char *zone;
    const char *state; /* a state name, "running" */
    int page_size;     /* items per request, 1..500; 0 → 500 */
} csl_cloud_list_filter;

/* ---------------------------------------------------------------- client */

typedef struct csl_cloud csl_cloud;

typedef struct csl_cloud_options {
    const char *token;       /* bearer token; NULL or "" sends none */
    const char *user_agent;  /* default "cloudserver-lab/0.1" */
    long connect_timeout_ms; /* default 5000 */
    long timeout_ms;         /* whole request; default 30000 */
    size_t max_response;     /* bytes; default 16 MiB; larger → RETRYABLE/DECODE */
    unsigned max_idle;       /* idle curl handles kept for reuse; default 16 */
    const char *ca_file;     /* PEM bundle for an https endpoint; NULL: the system's */
    csl_metrics *metrics;    /* when set: cloudserver_cloud_api_requests_total{op,code},
                                cloudserver_cloud_api_request_duration_seconds{op} */
} csl_cloud_options;

/* Counters since csl_cloud_new, for tests and benchmarks. */
typedef struct csl_cloud_stats {
    uint64_t requests; /* HTTP exchanges attempted (each page of a list counts) */
    uint64_t connects; /* TCP connections opened for them */
} csl_cloud_stats;

/* API: the client. Every call below is thread-safe except csl_cloud_free
 * (call it after the last call has returned). */

/* Creates a client for base_url ("http://127.0.0.1:8090", optionally with a
 * path prefix; a trailing '/' is ignored). opt may be NULL. Returns NULL
 * with err saying why: a URL that is not http(s)://host…, a token with
 * control characters, or out of memory. The first call runs
 * curl_global_init once for the process. */
csl_cloud *csl_cloud_new(const char *base_url, const csl_cloud_options *opt, char *err,
                         size_t errsz);
void csl_cloud_free(csl_cloud *c);
/* Replaces the bearer token for the calls that start after it returns
 * (NULL or "" sends none). Returns 0, or -1 (token unchanged) when it holds
 * a control character or is longer than 4096 bytes, or on out of memory. */
int csl_cloud_set_token(csl_cloud *c, const char *token);
void csl_cloud_get_stats(csl_cloud *c, csl_cloud_stats *out);

/* API: calls. Each returns err->code (err may be NULL) and fills *out on
 * CSL_CLOUD_OK; on any other code *out is left zeroed (freeing it is
 * harmless). out may be NULL where the reply is not wanted — the reply is
 * still checked, so a malformed one still fails the call. Ids are
 * sent percent-encoded; an empty id, "." or ".." is refused (INVALID,
 * cause REQUEST) without a request. */

/* POST /v1/instances with Idempotency-Key: key (required: 1..255 printable
 * ASCII characters, else INVALID without a request). OK with status 202
 * for a new instance (pending), 200 for a replay of the same key and spec
 * (the instance's current view; state DELETED once it is gone). A reused
 * key with another spec is CONFLICT/IdempotencyMismatch. */
csl_cloud_code csl_cloud_create_instance(csl_cloud *c, const csl_cloud_instance_spec *spec,
                                         const char *key, csl_cloud_instance *out,
                                         csl_cloud_error *err);
/* GET /v1/instances/{id}; NOT_FOUND once deleted. */
csl_cloud_code csl_cloud_get_instance(csl_cloud *c, const char *id, csl_cloud_instance *out,
                                      csl_cloud_error *err);
/* GET /v1/instances with the filter (may be NULL), following nextPageToken
 * to the last page; *out (zeroed first) gets every item in the cloud's
 * order. A failure on any page fails the call and *out stays empty. */
csl_cloud_code csl_cloud_list_instances(csl_cloud *c, const csl_cloud_list_filter *filter,
                                        csl_cloud_instance_list *out, csl_cloud_error *err);
/* The same list a page at a time, without holding it: fn sees each item
 * (valid only during the call) as its page arrives, and the page is freed
 * before the next is asked for, so a list of 10,000 instances costs one
 * page of memory. A failure on a later page returns its code after fn has
 * seen the earlier pages. */
typedef void (*csl_cloud_instance_fn)(const csl_cloud_instance *it, void *ctx);
csl_cloud_code csl_cloud_each_instance(csl_cloud *c, const csl_cloud_list_filter *filter,
                                       csl_cloud_instance_fn fn, void *ctx, csl_cloud_error *err);
/* The instances tagged key=value: how an object's instance is adopted by
 * its uid tag. */
csl_cloud_code csl_cloud_find_instances(csl_cloud *c, const char *key, const char *value,
                                        csl_cloud_instance_list *out, csl_cloud_error *err);
/* PATCH /v1/instances/{id}: 202 resizing, or 200 when the size is already
 * that. INVALID/DiskShrinkNotAllowed for a smaller disk, CONFLICT/
 * InvalidState unless running or stopped. out: the instance as answered
 * (the old size shows until the resize completes). */
csl_cloud_code csl_cloud_resize_instance(csl_cloud *c, const char *id, const csl_cloud_resize *r,
                                         csl_cloud_instance *out, csl_cloud_error *err);
/* PATCH /v1/instances/{id} with {"tags": {...}}, a merge patch of the
 * instance's tags: each kv with a value sets that tag, with value NULL
 * removes it. 200 with the instance; CONFLICT/InvalidState while it is
 * deleting. Used to drop the ownership tags of a Retain-policy instance. */
csl_cloud_code csl_cloud_update_tags(csl_cloud *c, const char *id, const csl_cloud_kv *tags,
                                     size_t n_tags, csl_cloud_instance *out, csl_cloud_error *err);
/* POST /v1/instances/{id}/actions/{start,stop,reboot}; CONFLICT/InvalidState
 * when the state does not allow it. Sent on a fresh connection (see the
 * doc). */
csl_cloud_code csl_cloud_instance_action(csl_cloud *c, const char *id, csl_cloud_action action,
                                         csl_cloud_instance *out, csl_cloud_error *err);
/* DELETE /v1/instances/{id}: 202 deleting. NOT_FOUND when already gone —
 * which a caller deleting should count as done. */
csl_cloud_code csl_cloud_delete_instance(csl_cloud *c, const char *id, csl_cloud_error *err);

/* POST /v1/instances/{id}/snapshots with body {"name"?,"tags"?}; name may
 * be NULL (the cloud names it after its id). key: Idempotency-Key, or NULL
 * for none — then the request goes on a fresh connection so libcurl never
 * re-sends it. */
csl_cloud_code csl_cloud_create_snapshot(csl_cloud *c, const char *instance_id, const char *name,
                                         const csl_cloud_kv *tags, size_t n_tags, const char *key,
                                         csl_cloud_snapshot *out, csl_cloud_error *err);
csl_cloud_code csl_cloud_get_snapshot(csl_cloud *c, const char *id, csl_cloud_snapshot *out,
                                      csl_cloud_error *err);
/* GET /v1/snapshots?instance=… (instance_id NULL: every snapshot), all pages. */
csl_cloud_code csl_cloud_list_snapshots(csl_cloud *c, const char *instance_id,
                                        csl_cloud_snapshot_list *out, csl_cloud_error *err);
/* DELETE /v1/snapshots/{id}: 204. NOT_FOUND when already gone. */
csl_cloud_code csl_cloud_delete_snapshot(csl_cloud *c, const char *id, csl_cloud_error *err);

/* API: results */
void csl_cloud_instance_free(csl_cloud_instance *i);
void csl_cloud_instance_list_free(csl_cloud_instance_list *l);
void csl_cloud_snapshot_free(csl_cloud_snapshot *s);
void csl_cloud_snapshot_list_free(csl_cloud_snapshot_list *l);
/* The value of tag key, or NULL. */
const char *csl_cloud_instance_tag(const csl_cloud_instance *i, const char *key);

/* API: names and messages */
const char *csl_cloud_code_name(csl_cloud_code c);         /* "OK", "NotFound", "Retryable", … */
const char *csl_cloud_cause_name(csl_cloud_cause c);       /* "HTTP", "Timeout", … */
const char *csl_instance_state_name(csl_instance_state s); /* "running"; "unknown" */
const char *csl_cloud_action_name(csl_cloud_action a);     /* "start", "stop", "reboot" */
/* One line for a person: "CreateInstance: HTTP 400 InvalidZone: unknown
 * zone …" or "GetInstance: timeout: Operation timed out after 300 ms …".
 * Always NUL-terminates buf (when bufsz > 0); returns buf. */
const char *csl_cloud_error_str(const csl_cloud_error *e, char *buf, size_t bufsz);

/* API: the pure parts, exposed for tests and for reading stored replies.
 * None of them does I/O. */

/* Classifies an HTTP error reply: status (not 2xx), its body (the cloud's
 * {"error":{"code","message"}} or anything else, which becomes the message)
 * and the Retry-After header value (may be NULL). Fills code, cause,
 * status, cloud_code, message, retry_after_s; leaves op. Never fails. */
void csl_cloud_classify_reply(int status, const char *body, size_t len, const char *retry_after,
                              csl_cloud_error *err);
/* Classifies a libcurl failure (a CURLcode, not CURLE_OK) with libcurl's
 * text (may be NULL). */
void csl_cloud_classify_transport(int curl_code, const char *text, csl_cloud_error *err);
/* Retry-After as seconds: delta-seconds ("5") or an HTTP-date, against
 * now_ms (epoch ms). A date in the past gives 0; values are capped at
 * 86400. -1 when value is NULL or unparseable. */
int csl_cloud_parse_retry_after(const char *value, int64_t now_ms);

/* Decode one instance / snapshot from JSON. 0, or -1 with why naming the
 * field ("cpu: expected an integer, got a string") and *out zeroed.
 * Required: id (non-empty), name, state, cpu, memoryMiB, diskGiB, image,
 * zone (snapshot: id, instanceId, state); other documented fields are
 * optional but, when present, must have their type; unknown fields are
 * ignored. */
int csl_cloud_instance_from_json(const cJSON *j, csl_cloud_instance *out, char *why, size_t whysz);
int csl_cloud_snapshot_from_json(const cJSON *j, csl_cloud_snapshot *out, char *why, size_t whysz);
/* Decode one list page ({"items":[…],"nextPageToken"?}) and append its
 * items to *list. *next gets a malloc'd token, or NULL on the last page.
 * 0, or -1 with why ("items[3].cpu: …") and *list as it was. */
int csl_cloud_instance_page_parse(const char *body, size_t len, csl_cloud_instance_list *list,
                                  char **next, char *why, size_t whysz);
int csl_cloud_snapshot_page_parse(const char *body, size_t len, csl_cloud_snapshot_list *list,
                                  char **next, char *why, size_t whysz);
/* The create body for spec, unformatted JSON (caller frees), or NULL with
 * why when a required field is missing (or out of memory). */
char *csl_cloud_instance_spec_json(const csl_cloud_instance_spec *spec, char *why, size_t whysz);

#endif
