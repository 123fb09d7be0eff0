/* server_priv.h — what server.c, control.c and config.c share: the server
 * struct and the few helpers the control API needs from the server core.
 * Not for main.c (it uses server.h). */
#ifndef MC_SERVER_PRIV_H
#define MC_SERVER_PRIV_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "csl/httpd.h"
#include "csl/metrics.h"
#include "csl/yaml.h"
#include "cloud.h"
#include "faults.h"
#include "journal.h"
#include "mc.h"
#include "server.h"
#include "tokens.h"

#define MC_STATUS_MAX 600
#define MC_FAULT_TYPES_MAX 16

typedef struct mc_v1_route mc_v1_route;
typedef struct mc_ctl_route mc_ctl_route;

struct mc_server {
    mc_server_config cfg;
    uint64_t seed;
    int64_t start_mono_ns;

    mc_cloud *cloud;
    mc_faults *faults;
    mc_journal *journal;
    mc_tokens *tokens;
    csl_metrics *metrics;
    csl_httpd *httpd;
    mc_v1_route *v1_routes;   /* route_data of the /v1 routes */
    mc_ctl_route *ctl_routes; /* route_data of the /_mock routes */

    csl_metric *m_requests;  /* mockcloud_http_requests_total{op,method,code} */
    csl_metric *m_duration;  /* mockcloud_http_request_duration_seconds{op} */
    csl_metric *m_faults;    /* mockcloud_faults_injected_total{type} */
    csl_metric *m_instances; /* mockcloud_instances{state} */
    csl_metric *m_dropped;   /* mockcloud_journal_dropped_total */

    /* /_mock/stats, and the journal's fill level for counting drops. */
    pthread_mutex_t stats_lock;
    uint64_t req_total;
    uint64_t by_status[MC_STATUS_MAX];
    struct {
        char name[16];
        uint64_t n;
    } fault_types[MC_FAULT_TYPES_MAX];
    size_t nfault_types;
    uint64_t journal_fill;

    /* State-file group commit: saved_gen is the cloud generation known to be
     * on disk; whoever holds save_lock writes for everyone waiting. */
    pthread_mutex_t save_lock;
    uint64_t saved_gen;
    bool save_failing;

    /* The lifecycle ticker. */
    pthread_t ticker;
    pthread_mutex_t tick_lock;
    pthread_cond_t tick_cond;
    bool tick_stop;
    bool tick_kick;
    bool ticker_running;

    /* Serialises multi-step control changes (rule batches, outage ids). */
    pthread_mutex_t ctl_lock;
    unsigned outage_seq;

    bool started;
    bool stopped;
};

/* ---------------------------------------------------------------- server.c */

/* Writes the state file when the cloud changed since the last write, before
 * the caller replies (group commit). No-op without --state-file. */
void mc_srv_persist(mc_server *s);
/* Wakes the ticker: a request may have scheduled an earlier transition. */
void mc_srv_kick(mc_server *s);
/* Records the request in the journal, metrics and stats with the status
 * about to be sent (0: none). Call it right before ending the request, so
 * the entry exists by the time the client sees the end; at most once per
 * request (on_done records those never recorded). */
void mc_srv_record(mc_server *s, csl_http_req *req, int status);
/* Sends an mc_reply (status, JSON body or none, Location) and frees it. */
void mc_srv_send(csl_http_req *req, mc_reply *rep);
/* Collects the query arguments into a malloc'd array (*out, *n; free *out).
 * Pointers stay valid while the request lives. -1 on allocation failure. */
int mc_srv_query(csl_http_req *req, mc_kv **out, size_t *n);
/* Parses the body as JSON. NULL with *rep set to a 400 (naming the offset)
 * when the body is empty or malformed. */
cJSON *mc_srv_parse_body(csl_http_req *req, mc_reply *rep);
/* The journal was cleared: restart the drop accounting. */
void mc_srv_journal_cleared(mc_server *s);
/* {"uptimeSeconds",…} for /_mock/stats. Caller owns. */
cJSON *mc_srv_stats(mc_server *s);
/* "Authorization: Bearer X" → X (NULL when absent or another scheme). */
const char *mc_srv_bearer(csl_http_req *req, char *buf, size_t bufsz);

/* ---------------------------------------------------------------- control.c */

/* Registers every /_mock route. 0, or -1 on allocation failure. */
int mc_control_register(mc_server *s);
void mc_control_free(mc_server *s);

/* ---------------------------------------------------------------- config.c */

/* The start-up YAML, parsed but not applied (the seed must be known before
 * the cloud and fault engine exist). */
typedef struct mc_startup {
    csl_yaml *yaml;
    const cJSON *root; /* the mapping, or NULL for an empty file */
    bool has_seed;
    uint64_t seed;
} mc_startup;

/* Reads and checks the top level (unknown keys, types, the seed). Returns
 * 0, or -1 with "FILE:LINE:COL: reason" in err. */
int mc_config_load(mc_startup *st, const char *path, char *err, size_t errsz);
/* Applies cloud, faults and tokens. Returns 0, or -1 with a positioned
 * reason in err. */
int mc_config_apply(mc_startup *st, mc_server *s, int64_t now_ms, char *err, size_t errsz);
void mc_config_free(mc_startup *st);

#endif
