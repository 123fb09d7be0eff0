/* server.h — mockcloud's HTTP server: the /v1 cloud API behind the fault
 * engine and bearer-token auth, the /_mock control API, /metrics and
 * /healthz, the request journal, the state file and the lifecycle ticker.
 *
 * main.c only parses flags into an mc_server_config and drives the life of
 * one mc_server: new (load everything, fail early with a clear reason) →
 * start (bind, serve) → stop (drain, flush) → free. */
#ifndef MC_SERVER_H
#define MC_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MC_VERSION "0.1.0"

#define MC_DEFAULT_LISTEN "127.0.0.1:8090"
#define MC_DEFAULT_JOURNAL_SIZE 10000
#define MC_DEFAULT_MAX_BODY 1048576
#define MC_DEFAULT_THREADS 2
#define MC_DEFAULT_MAX_CONNECTIONS 16384
/* Request line and headers must fit in it; each open connection keeps it. */
#define MC_DEFAULT_CONN_MEMORY 16384

/* Everything the flags say. Strings are borrowed (argv) and must outlive the
 * server. */
typedef struct mc_server_config {
    const char *listen;    /* "HOST:PORT"; port 0 picks a free one */
    const char *port_file; /* NULL, or where to write the bound port */
    const char **tokens;   /* --token values ("T", "T:ro", "T:rw") */
    size_t ntokens;
    const char *tokens_file; /* NULL or "TOKEN [rw|ro]" lines */
    const char *admin_token; /* NULL: the control API is open */
    bool has_seed;           /* --seed given (wins over the config's) */
    uint64_t seed;
    const char *config_file; /* NULL or the start-up YAML */
    const char *state_file;  /* NULL: nothing persists */
    size_t journal_size;
    size_t max_body;
    unsigned threads;
    unsigned max_connections;
    size_t conn_memory;      /* libmicrohttpd's per-connection pool, bytes */
} mc_server_config;

typedef struct mc_server mc_server;

/* API */
/* Sets every field to its default. */
void mc_server_config_init(mc_server_config *cfg);
/* Builds the server: reads the config file, the tokens file and the state
 * file, and checks the state file can be written. Nothing listens yet. On
 * error returns NULL and writes into err a reason naming the file (and
 * line:col for YAML) — the caller exits 1. */
mc_server *mc_server_new(const mc_server_config *cfg, char *err, size_t errsz);
/* Binds, starts the HTTP threads and the lifecycle ticker, and writes the
 * port file. Returns 0, or -1 with a reason in err. */
int mc_server_start(mc_server *s, char *err, size_t errsz);
/* The bound port (after start). */
int mc_server_port(const mc_server *s);
/* The seed in use (given, from the config, or drawn at random). */
uint64_t mc_server_seed(const mc_server *s);
/* Whether /v1 checks bearer tokens (some token was configured). */
bool mc_server_auth_enabled(const mc_server *s);
/* Stops accepting, resumes (and closes) suspended connections, stops the
 * ticker and flushes the state file. Idempotent. */
void mc_server_stop(mc_server *s);
/* Stops if needed and frees everything. NULL is fine. */
void mc_server_free(mc_server *s);

#endif
